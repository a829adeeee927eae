/// A stream of completion chunks: any async sequence of `ChatStreamEvent`, type-erased so that
/// stages can wrap it. Iterating it drives the upstream; dropping the iterator (the client went
/// away) lets the upstream call be cancelled.
public struct ChatStream: AsyncSequence, Sendable {
    public typealias Element = ChatStreamEvent

    private let makeIterator: @Sendable () -> AsyncIterator

    public init<Base: AsyncSequence & Sendable>(_ base: Base) where Base.Element == ChatStreamEvent {
        self.makeIterator = { AsyncIterator(IteratorBox(base.makeAsyncIterator())) }
    }

    /// A stream that yields the given events, then ends.
    public init(events: [ChatStreamEvent]) {
        self.init(events.async)
    }

    public func makeAsyncIterator() -> AsyncIterator { makeIterator() }

    /// The iterator of a `ChatStream`.
    public struct AsyncIterator: AsyncIteratorProtocol {
        private let box: any ChatIteratorBox

        init(_ box: any ChatIteratorBox) { self.box = box }

        public mutating func next() async throws -> ChatStreamEvent? {
            try await box.next()
        }
    }

    /// A stream that calls `onEvent` for each event and `onFinish` exactly once: at the end, on
    /// an error, or when the consumer stops iterating early (the client disconnected).
    public func observed(
        onEvent: @escaping @Sendable (ChatStreamEvent) -> Void,
        onFinish: @escaping @Sendable (StreamOutcome) -> Void
    ) -> ChatStream {
        let base = self
        return ChatStream(ObservedSequence(base: base, onEvent: onEvent, onFinish: onFinish))
    }
}

/// How a stream ended.
public enum StreamOutcome: Sendable {
    case finished
    case failed(any Error)
    case cancelled
}

protocol ChatIteratorBox: AnyObject {
    func next() async throws -> ChatStreamEvent?
}

final class IteratorBox<Base: AsyncIteratorProtocol>: ChatIteratorBox where Base.Element == ChatStreamEvent {
    var base: Base
    init(_ base: Base) { self.base = base }
    func next() async throws -> ChatStreamEvent? { try await base.next() }
}

struct ObservedSequence: AsyncSequence, Sendable {
    typealias Element = ChatStreamEvent
    let base: ChatStream
    let onEvent: @Sendable (ChatStreamEvent) -> Void
    let onFinish: @Sendable (StreamOutcome) -> Void

    func makeAsyncIterator() -> Iterator {
        Iterator(state: ObservedState(base: base.makeAsyncIterator(), onEvent: onEvent, onFinish: onFinish))
    }

    struct Iterator: AsyncIteratorProtocol {
        let state: ObservedState
        mutating func next() async throws -> ChatStreamEvent? { try await state.next() }
    }
}

// A class so that `deinit` can report an abandoned stream as cancelled.
final class ObservedState {
    var base: ChatStream.AsyncIterator
    let onEvent: @Sendable (ChatStreamEvent) -> Void
    let onFinish: @Sendable (StreamOutcome) -> Void
    var finished = false

    init(base: ChatStream.AsyncIterator, onEvent: @escaping @Sendable (ChatStreamEvent) -> Void, onFinish: @escaping @Sendable (StreamOutcome) -> Void) {
        self.base = base
        self.onEvent = onEvent
        self.onFinish = onFinish
    }

    func next() async throws -> ChatStreamEvent? {
        guard !finished else { return nil }
        do {
            if let event = try await base.next() {
                onEvent(event)
                return event
            }
            finish(.finished)
            return nil
        } catch is CancellationError {
            finish(.cancelled)
            throw CancellationError()
        } catch {
            finish(Task.isCancelled ? .cancelled : .failed(error))
            throw error
        }
    }

    private func finish(_ outcome: StreamOutcome) {
        guard !finished else { return }
        finished = true
        onFinish(outcome)
    }

    deinit {
        if !finished { onFinish(.cancelled) }
    }
}

struct ArrayAsyncSequence<Element: Sendable>: AsyncSequence, Sendable {
    let elements: [Element]
    func makeAsyncIterator() -> Iterator { Iterator(elements: elements) }
    struct Iterator: AsyncIteratorProtocol {
        let elements: [Element]
        var index = 0
        mutating func next() async -> Element? {
            guard index < elements.count else { return nil }
            defer { index += 1 }
            return elements[index]
        }
    }
}

extension Array where Element: Sendable {
    /// The array as an async sequence.
    public var async: some AsyncSequence<Element, Never> & Sendable { ArrayAsyncSequence(elements: self) }
}
