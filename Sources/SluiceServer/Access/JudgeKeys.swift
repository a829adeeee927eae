import Foundation
import SluiceCore

/// Each judge's own key (`judge:NAME`, id `key_judge_NAME`): its calls are admitted, budgeted
/// (`budget_usd_day`) and recorded in the audit log as that key, apart from the traffic it
/// judges. Nobody holds its secret; it is made at start and its budget kept as configured.
struct JudgeKeys {
    let store: any AccessStore

    func ensure(_ judges: [String: JudgeConfig]) async throws -> [String: Principal] {
        var out: [String: Principal] = [:]
        for (name, judge) in judges.sorted(by: { $0.key < $1.key }) {
            let id = "key_judge_" + name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.map(String.init).joined()
            let limits = Limits(budgetUSDDay: judge.budgetUSDDay)
            var key: APIKeyRecord
            if let existing = try await store.key(id: id) {
                key = existing
                if key.limits != limits {
                    key.limits = limits
                    try await store.updateKey(key)
                }
            } else {
                let (_, hash, prefix) = APIKeyMint.newKey()
                key = APIKeyRecord(
                    id: id, name: "judge:\(name)", teamID: nil, role: .app, prefix: prefix, hash: hash, createdAt: Date().timeIntervalSince1970,
                    limits: limits)
                try await store.insertKey(key)
            }
            out[name] = Principal(key: key, team: nil)
        }
        return out
    }
}
