// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // A nonisolated async function runs on its caller's executor instead of hopping to the
    // generic one on entry: ~116 `swift_task_switch` calls per proxied request were this.
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let package = Package(
    name: "sluice",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .library(name: "SluiceServer", targets: ["SluiceServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // Already resolved for Hummingbird: NIOHTTPTypes, for the read deadlines' channel handler.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter's dependencies would double the build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // What the hot path runs on, below every capability: the JSON parser, tree, decoder and
        // writers, and deadlines (a timer wheel that cancels tasks). Not a product.
        .target(
            name: "SluiceRuntime",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings),
        .target(
            name: "SluiceCore",
            dependencies: [
                "SluiceRuntime",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // fork + PR_SET_PDEATHSIG + exec from a thread that never exits (see process_launcher.c).
        .target(name: "CProcessLauncher"),
        .target(
            name: "SluiceProviders",
            dependencies: [
                "SluiceCore",
                "CProcessLauncher",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .target(
            name: "SluiceEmbeddings",
            dependencies: ["SluiceCore", "COpenBLAS", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings),
        // Input and output checks (PII and secrets, prompt injection, ban lists, JSON Schema) and their pipeline stage.
        .target(
            name: "SluiceGuardrails", dependencies: ["SluiceCore", .product(name: "Metrics", package: "swift-metrics")], swiftSettings: swiftSettings),
        // Choosing among deployments: strategies, circuit breakers, backoff, cheap-vs-strong classification.
        .target(
            name: "SluiceFlows",
            dependencies: [
                "SluiceCore", "SluiceGuardrails", .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings),
        // The client APIs other than Chat Completions (OpenAI's Responses, Anthropic's Messages),
        // translated to and from the chat request every endpoint runs through the pipeline.
        .target(name: "SluiceClientAPIs", dependencies: ["SluiceCore"], swiftSettings: swiftSettings),
        .target(name: "SluiceConversations", dependencies: ["SluiceCore", "SluiceGuardrails"], swiftSettings: swiftSettings),
        // Files and vector stores: text extraction, chunking, the HNSW index, hybrid search,
        // background ingestion; and the semantic cache's index.
        .target(
            name: "SluiceRetrieval",
            dependencies: [
                "SluiceCore", .product(name: "Collections", package: "swift-collections"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        // The exact and semantic response cache and its pipeline stage.
        .target(
            name: "SluiceCache",
            dependencies: [
                "SluiceCore", "SluiceRetrieval", "SluiceStore",
                .product(name: "Collections", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "SluiceRouting",
            dependencies: [
                "SluiceCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "SluiceStore",
            dependencies: [
                "SluiceCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Closing the loop: experiments (assignment, statistics, decisions), judges (rubrics, the
        // live sample's queue, pairwise comparison), scorers and offline evaluation reports.
        .target(
            name: "SluiceEvaluation",
            dependencies: [
                "SluiceCore", "SluiceGuardrails", "SluiceStore", .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        // Batches: the input file's validation, the worker that runs lines from the durable queue,
        // and the output and error files.
        .target(
            name: "SluiceBatch",
            dependencies: [
                "SluiceCore", "SluiceStore", .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        // Audit rows, the request log line, metrics, traces, retention and alerts, and the record stage.
        .target(
            name: "SluiceObservability",
            dependencies: [
                "SluiceCore", "SluiceGuardrails", "SluiceRouting", "SluiceStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "SluiceServer",
            dependencies: [
                "SluiceObservability",
                "SluiceFlows",
                "SluiceEvaluation",
                "SluiceBatch",
                "SluiceClientAPIs",
                "SluiceConversations",
                "SluiceCache",
                "SluiceCore",
                "SluiceEmbeddings",
                "SluiceGuardrails",
                "SluiceProviders",
                "SluiceRetrieval",
                "SluiceRouting",
                "SluiceStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluiceServer",
                "SluiceCache",
                "SluiceObservability",
                "SluiceFlows",
                "SluiceEvaluation",
                "SluiceBatch",
                "SluiceStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                "SluiceGuardrails",
                "SluiceEmbeddings",
                "SluiceRetrieval",
                "SluiceRouting",
                "SluiceRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // `make bench`'s server floors: bare Hummingbird and bare SwiftNIO on the chat route.
        .executableTarget(
            name: "bench-floor",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                "SluiceRuntime",
            ],
            path: "bench/floor",
            swiftSettings: swiftSettings
        ),
        // What tests share: clients shut down on every path, a log to assert on, a TCP forwarder.
        .target(
            name: "SluiceTesting",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceCoreTests",
            dependencies: [
                "SluiceCore", "SluiceRuntime", .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceProvidersTests",
            dependencies: [
                "SluiceProviders",
                "SluiceTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SluiceRetrievalTests", dependencies: ["SluiceRetrieval", "SluiceStore"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceClientAPIsTests", dependencies: ["SluiceClientAPIs"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceCacheTests", dependencies: ["SluiceCache", "SluiceStore"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceFlowsTests", dependencies: ["SluiceFlows"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceBatchTests", dependencies: ["SluiceBatch", "SluiceStore"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceEvaluationTests", dependencies: ["SluiceEvaluation", "SluiceStore"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceRoutingTests", dependencies: ["SluiceRouting"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceGuardrailsTests", dependencies: ["SluiceGuardrails"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceEmbeddingsTests", dependencies: ["SluiceEmbeddings"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceStoreTests",
            dependencies: [
                "SluiceStore", "SluiceTesting", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceServerTests",
            dependencies: [
                "SluiceServer",
                "SluiceEvaluation",
                "SluiceObservability",
                "SluiceTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The real local models (make test installs them first): MiniLM, and Gemma behind a supervised llama-server.
        .testTarget(
            name: "LocalModelTests",
            dependencies: [
                "SluiceServer",
                "SluiceProviders",
                "SluiceGuardrails",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
