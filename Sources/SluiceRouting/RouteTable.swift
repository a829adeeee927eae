import SluiceCore

/// What a model name a client sends resolves to: an alias (several deployments and how to order
/// them) or one model entry (retried on its own), with the cache rule that applies.
struct Route: Sendable {
    let order: DeploymentOrder
    let cacheRule: CacheRuleConfig?
    /// For `strategy: complexity`: the classifier and the two entries it chooses between.
    let complexity: ComplexityRoute?
}

/// The classifier of a `strategy: complexity` alias and the entries it picks.
struct ComplexityRoute: Sendable {
    let classifier: ComplexityClassifier
    let cheap: String
    let strong: String
}

/// Every name a chat request may use, built once from the config.
public struct RouteTable: Sendable {
    let routes: [String: Route]

    public init(config: SluiceConfig, catalog: ModelCatalog, board: DeploymentBoard, classifiers: [String: ComplexityClassifier] = [:]) {
        var routes: [String: Route] = [:]
        for (name, deployment) in catalog.chat {
            let rule = config.models.first { $0.name == name }?.cache
            routes[name] = Route(
                order: DeploymentOrder(strategy: .ordered, deployments: [deployment], board: board), cacheRule: rule, complexity: nil)
        }
        for (name, alias) in config.aliases {
            var members = alias.deployments
            if let c = alias.complexity {
                for entry in [c.cheap, c.strong] where !members.contains(entry) { members.append(entry) }
            }
            let order = DeploymentOrder(
                strategy: alias.strategy, deployments: members.compactMap { catalog.chat[$0] }, weights: alias.weights,
                fallbacks: alias.fallbacks.compactMap { catalog.chat[$0] }, board: board, explorationRate: config.routing.explorationRate)
            let complexity = alias.complexity.flatMap { c in
                classifiers[name].map { ComplexityRoute(classifier: $0, cheap: c.cheap, strong: c.strong) }
            }
            routes[name] = Route(order: order, cacheRule: alias.cache, complexity: complexity)
        }
        self.routes = routes
    }

    subscript(name: String) -> Route? { routes[name] }

    /// The smallest context window among the deployments a name may reach (what history must fit).
    public func smallestContextWindow(_ name: String) -> Int? {
        guard let route = routes[name] else { return nil }
        return (route.order.deployments + route.order.fallbacks).compactMap(\.contextWindow).min()
    }
}
