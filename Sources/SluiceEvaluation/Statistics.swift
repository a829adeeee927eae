import Foundation
import SluiceCore

/// The tests an experiment's analysis runs, from counts, sums and sums of squares.
public enum Statistics {
    /// The standard normal distribution's CDF.
    public static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// Student's t distribution's CDF with `df` degrees of freedom.
    public static func studentTCDF(_ t: Double, df: Double) -> Double {
        let x = df / (df + t * t)
        let tail = 0.5 * regularizedIncompleteBeta(x, a: df / 2, b: 0.5)
        return t > 0 ? 1 - tail : tail
    }

    /// The t value below which a share `p` of the distribution lies (bisection on the CDF).
    public static func studentTQuantile(_ p: Double, df: Double) -> Double {
        guard p > 0 && p < 1 else { return p <= 0 ? -.infinity : .infinity }
        var lo = -1000.0
        var hi = 1000.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if studentTCDF(mid, df: df) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    /// The normal quantile (bisection on the CDF; used for 95% intervals of rates).
    public static func normalQuantile(_ p: Double) -> Double {
        var lo = -40.0
        var hi = 40.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if normalCDF(mid) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    /// I_x(a, b), by the continued fraction (modified Lentz), with the symmetry that keeps it convergent.
    public static func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        guard x > 0 else { return 0 }
        guard x < 1 else { return 1 }
        let logGammas: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let front = exp(logGammas + logPowers)
        if x < (a + 1) / (a + b + 2) { return front * betaContinuedFraction(x, a: a, b: b) / a }
        return 1 - front * betaContinuedFraction(1 - x, a: b, b: a) / b
    }

    private static func betaContinuedFraction(_ x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...500 {
            let m = Double(m)
            var aa = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return h
    }

    /// A test of B against A: the difference of B's mean from A's, its 95% interval, the
    /// statistic, and the two-sided p-value.
    public struct Comparison: Sendable, Hashable {
        public var test: String
        public var difference: Double
        public var interval: ClosedRange<Double>
        public var statistic: Double
        public var degreesOfFreedom: Double?
        public var pValue: Double
        /// The variance of the difference's estimate (for the mixture SPRT).
        public var varianceOfDifference: Double
    }

    /// Two-proportion z-test with the pooled proportion (as statsmodels' `proportions_ztest`);
    /// the interval uses the unpooled standard error.
    public static func twoProportionZTest(_ a: Moments, _ b: Moments, confidence: Double = 0.95) -> Comparison? {
        guard a.count > 0, b.count > 0 else { return nil }
        let n1 = Double(a.count)
        let n2 = Double(b.count)
        let p1 = a.sum / n1
        let p2 = b.sum / n2
        let pooled = (a.sum + b.sum) / (n1 + n2)
        let se = (pooled * (1 - pooled) * (1 / n1 + 1 / n2)).squareRoot()
        let diff = p2 - p1
        let z = se > 0 ? diff / se : 0
        let p = se > 0 ? 2 * (1 - normalCDF(abs(z))) : 1
        let unpooled = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        let half = normalQuantile(0.5 + confidence / 2) * unpooled.squareRoot()
        return Comparison(
            test: "two_proportion_z", difference: diff, interval: (diff - half)...(diff + half), statistic: z, degreesOfFreedom: nil, pValue: p,
            varianceOfDifference: unpooled)
    }

    /// Welch's unequal-variances t-test (as SciPy's `ttest_ind(equal_var=False)`), with the
    /// Welch–Satterthwaite degrees of freedom.
    public static func welchTTest(_ a: Moments, _ b: Moments, confidence: Double = 0.95) -> Comparison? {
        guard let m1 = a.mean, let m2 = b.mean, let v1 = a.variance, let v2 = b.variance else { return nil }
        let s1 = v1 / Double(a.count)
        let s2 = v2 / Double(b.count)
        let se2 = s1 + s2
        let diff = m2 - m1
        guard se2 > 0 else {
            return Comparison(
                test: "welch_t", difference: diff, interval: diff...diff, statistic: diff == 0 ? 0 : .infinity, degreesOfFreedom: nil,
                pValue: diff == 0 ? 1 : 0, varianceOfDifference: 0)
        }
        let df = se2 * se2 / (s1 * s1 / Double(a.count - 1) + s2 * s2 / Double(b.count - 1))
        let t = diff / se2.squareRoot()
        let p = 2 * (1 - studentTCDF(abs(t), df: df))
        let half = studentTQuantile(0.5 + confidence / 2, df: df) * se2.squareRoot()
        return Comparison(
            test: "welch_t", difference: diff, interval: (diff - half)...(diff + half), statistic: t, degreesOfFreedom: df, pValue: p,
            varianceOfDifference: se2)
    }

    /// The always-valid p-value of the mixture sequential probability ratio test (Johari et al.,
    /// "Always Valid Inference", 2017) for a difference `difference` whose estimate has variance
    /// `variance`, under a normal mixture N(0, τ²) over the true difference:
    /// Λ = √(V/(V+τ²)) · exp(τ²Δ² / (2V(V+τ²))), p = min(1, 1/Λ). The running minimum of these
    /// over the looks is the sequence's always-valid p-value.
    public static func mixtureSPRTPValue(difference: Double, variance: Double, mixtureVariance tau2: Double) -> Double {
        guard variance > 0, tau2 > 0 else { return difference == 0 || variance > 0 ? 1 : 0 }
        let logLambda = 0.5 * log(variance / (variance + tau2)) + tau2 * difference * difference / (2 * variance * (variance + tau2))
        return min(1, exp(-logLambda))
    }

    /// The 95% interval of a mean (t-based), or of a rate (Wilson's score interval).
    public static func interval(_ m: Moments, rate: Bool, confidence: Double = 0.95) -> ClosedRange<Double>? {
        guard let mean = m.mean else { return nil }
        let n = Double(m.count)
        if rate {
            let z = normalQuantile(0.5 + confidence / 2)
            let center = (mean + z * z / (2 * n)) / (1 + z * z / n)
            let half = z / (1 + z * z / n) * (mean * (1 - mean) / n + z * z / (4 * n * n)).squareRoot()
            return (center - half)...(center + half)
        }
        guard let v = m.variance else { return mean...mean }
        let half = studentTQuantile(0.5 + confidence / 2, df: n - 1) * (v / n).squareRoot()
        return (mean - half)...(mean + half)
    }
}
