import ArgumentParser
import Foundation
import NIOCore
import SluiceBatch
import SluiceCore
import SluiceStore

/// `sluice batches …`: every owner's batches on the store a running Sluice uses, one batch as
/// `GET /v1/batches/ID` answers it, and cancellation (the replicas' runners act on it within a second).
struct BatchCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batches", abstract: "List batches, show one, cancel one.", subcommands: [List.self, Show.self, Cancel.self])

    struct Options: ParsableArguments {
        @Option(name: .shortAndLong, help: "Path of sluice.yaml (the store its batches are in).")
        var config: String?
    }

    static func batch(_ id: String, in store: any BatchStore) async throws -> BatchRecord {
        guard let batch = try await store.batch(id: id) else { throw SluiceError(.notFound, "No batch found with id '\(id)'.", param: "id") }
        return batch
    }

    static func printJSON(_ value: JSONValue) throws {
        var out = ByteBuffer()
        try JSONWriter.write(value, to: &out)
        print(String(buffer: out))
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The newest batches: id, status, lines answered, rate, ETA, owner, endpoint.")
        @OptionGroup var options: Options
        @Option(help: "How many (newest first).") var limit = 20

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000.") }
        }

        func run() async throws {
            try await withStores(options.config, label: "sluice-batches") { _, stores in
                let now = Date().timeIntervalSince1970
                let rows = try await stores.batches.batches(owner: nil, page: ListPage(limit: limit)).prefix(limit)
                if rows.isEmpty { print("No batches.") }
                for b in rows {
                    let p = BatchProgress(b, now: now)
                    let rate = p.rate.map { String(format: "%.1f/s", $0) } ?? "-"
                    let eta = p.eta.map { "ETA " + BatchProgress.duration($0) } ?? "-"
                    print("\(b.id)\t\(b.status.rawValue)\t\(p.done)/\(b.total) (\(b.failed) failed)\t\(rate)\t\(eta)\t\(b.owner)\t\(b.endpoint)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One batch as JSON, as GET /v1/batches/ID answers it.")
        @OptionGroup var options: Options
        @Argument var id: String

        func run() async throws {
            try await withStores(options.config, label: "sluice-batches") { _, stores in
                try printJSON(BatchOutput.batch(try await batch(id, in: stores.batches)))
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a batch: no new line starts, lines in flight finish, and the output and error files hold what ran.")
        @OptionGroup var options: Options
        @Argument var id: String

        func run() async throws {
            try await withStores(options.config, label: "sluice-batches") { _, stores in
                let batch = try await stores.batches.cancel(try await batch(id, in: stores.batches))
                print("\(batch.id): \(batch.status.rawValue)")
            }
        }
    }
}
