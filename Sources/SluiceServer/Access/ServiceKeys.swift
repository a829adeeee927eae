import Foundation
import SluiceCore

/// Keys Sluice holds for work it does itself, so that the work is admitted, budgeted and
/// recorded in the audit log apart from the traffic it serves: each judge's (`judge:NAME`, id
/// `key_judge_NAME`, with the judge's `budget_usd_day`) and the server-run evaluations'
/// (`evaluations`, id `key_evals`). Nobody holds their secrets; they are made at start and their
/// limits kept as configured.
struct ServiceKeys {
    let store: any AccessStore

    func ensure(id: String, name: String, limits: Limits) async throws -> Principal {
        var key: APIKeyRecord
        if let existing = try await store.key(id: id) {
            key = existing
            if key.limits != limits {
                key.limits = limits
                try await store.updateKey(key)
            }
        } else {
            let (_, hash, prefix) = APIKeyMint.newKey()
            key = APIKeyRecord(id: id, name: name, teamID: nil, role: .app, prefix: prefix, hash: hash, createdAt: Date().timeIntervalSince1970, limits: limits)
            do {
                try await store.insertKey(key)
            } catch {
                // Made at the same moment by another replica or task: use theirs.
                guard let made = try await store.key(id: id) else { throw error }
                key = made
            }
        }
        return Principal(key: key, team: nil)
    }

    func judges(_ judges: [String: JudgeConfig]) async throws -> [String: Principal] {
        var out: [String: Principal] = [:]
        for (name, judge) in judges.sorted(by: { $0.key < $1.key }) {
            let id = "key_judge_" + name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.map(String.init).joined()
            out[name] = try await ensure(id: id, name: "judge:\(name)", limits: Limits(budgetUSDDay: judge.budgetUSDDay))
        }
        return out
    }
}
