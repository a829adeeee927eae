import Foundation
import SluiceCore
import Testing

@testable import SluiceEvaluation

/// The tests against reference values computed independently with SciPy 1.17 (scipy.stats
/// ttest_ind(equal_var=False), norm, t, special.betainc) and NumPy for the closed forms.
@Suite struct StatisticsTests {
    let a: [Double] = [3.1, 2.8, 3.6, 4.0, 3.3, 2.9, 3.8, 3.5]
    let b: [Double] = [3.9, 4.2, 3.7, 4.5, 4.1, 3.6, 4.8, 4.0, 4.4, 3.8]

    func close(_ x: Double?, _ y: Double, _ tolerance: Double = 5e-5) -> Bool { x.map { abs($0 - y) < tolerance } ?? false }

    @Test func distributionsMatchSciPy() {
        #expect(close(Statistics.normalCDF(1.3), 0.9031995154))
        #expect(close(Statistics.studentTCDF(2.1, df: 7.5), 0.9643814643))
        #expect(close(Statistics.studentTCDF(-0.4, df: 3), 0.3579675770))
        #expect(close(Statistics.studentTQuantile(0.975, df: 11.3), 2.1938768963))
        #expect(close(Statistics.regularizedIncompleteBeta(0.3, a: 2.5, b: 0.5), 0.0189271241))
    }

    @Test func welchMatchesSciPy() throws {
        let r = try #require(Statistics.welchTTest(Moments(a), Moments(b)))
        #expect(close(r.statistic, 3.7583285280))
        #expect(close(r.pValue, 0.0020610398))
        #expect(close(r.degreesOfFreedom, 14.2411715178))
        #expect(close(r.interval.lowerBound, 0.3119165015) && close(r.interval.upperBound, 1.1380834985))
    }

    @Test func twoProportionZMatchesReference() throws {
        let control = Moments(count: 120, sum: 45, sumOfSquares: 45)
        let treatment = Moments(count: 118, sum: 62, sumOfSquares: 62)
        let r = try #require(Statistics.twoProportionZTest(control, treatment))
        #expect(close(r.statistic, 2.3324316106))
        #expect(close(r.pValue, 0.0196779968))
        #expect(close(r.interval.lowerBound, 0.0254417664) && close(r.interval.upperBound, 0.2754056912))
        // The mixture SPRT over the same difference, τ = 0.05: far from significant at one look.
        let p = Statistics.mixtureSPRTPValue(difference: r.difference, variance: r.varianceOfDifference, mixtureVariance: 0.05 * 0.05)
        #expect(close(p, 0.4405622565))
    }

    @Test func intervalsOfMeansAndRates() throws {
        let mean = try #require(Statistics.interval(Moments(a), rate: false))
        #expect(close(mean.lowerBound, 3.0182013370) && close(mean.upperBound, 3.7317986630))
        let wilson = try #require(Statistics.interval(Moments(count: 120, sum: 45, sumOfSquares: 45), rate: true))
        #expect(close(wilson.lowerBound, 0.2935242979) && close(wilson.upperBound, 0.4642304937))
    }

    /// Always-valid p-values keep false positives under alpha however often one looks: A/A
    /// experiments (no true difference) looked at after every 20 samples.
    @Test func sequentialLooksDoNotInflateFalsePositives() {
        var rng = SplitMix(seed: 7)
        var sequentialRejections = 0
        var naiveRejections = 0
        let runs = 200
        for _ in 0..<runs {
            var x = Moments()
            var y = Moments()
            var minimum = 1.0
            var naive = false
            for step in 1...50 {
                for _ in 0..<20 {
                    x.add(rng.normal())
                    y.add(rng.normal())
                }
                guard let t = Statistics.welchTTest(x, y) else { continue }
                if t.pValue < 0.05 { naive = true }
                if step >= 2 {
                    minimum = min(minimum, Statistics.mixtureSPRTPValue(difference: t.difference, variance: t.varianceOfDifference, mixtureVariance: 0.04))
                }
            }
            if minimum < 0.05 { sequentialRejections += 1 }
            if naive { naiveRejections += 1 }
        }
        #expect(Double(sequentialRejections) / Double(runs) <= 0.05, "\(sequentialRejections) of \(runs)")
        #expect(Double(naiveRejections) / Double(runs) > 0.15, "peeking at fixed-horizon p-values inflates errors: \(naiveRejections) of \(runs)")
    }
}

/// A seeded generator (tests must be repeatable).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func normal() -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let v = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}
