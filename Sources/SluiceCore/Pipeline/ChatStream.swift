import Synchronization

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
    /// an error, when the consumer stops iterating early (the client disconnected), or when the
    /// stream is dropped without being iterated at all.
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
    func next() async throws -> ChatStreamEvent? { try await base.next(isolation: #isolation) }
}

struct ObservedSequence: AsyncSequence, Sendable {
    typealias Element = ChatStreamEvent
    let base: ChatStream
    let onEvent: @Sendable (ChatStreamEvent) -> Void
    let finish: FinishOnce

    init(base: ChatStream, onEvent: @escaping @Sendable (ChatStreamEvent) -> Void, onFinish: @escaping @Sendable (StreamOutcome) -> Void) {
        self.base = base
        self.onEvent = onEvent
        self.finish = FinishOnce(onFinish)
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(state: ObservedState(base: base.makeAsyncIterator(), onEvent: onEvent, finish: finish))
    }

    struct Iterator: AsyncIteratorProtocol {
        let state: ObservedState
        mutating func next() async throws -> ChatStreamEvent? { try await state.next() }
    }
}

/// Calls `onFinish` once: when told, or, if never told, as `.cancelled` when the last holder
/// lets go — of the iterator (the client went away midway) or of the stream itself (a response
/// dropped before anyone iterated it).
final class FinishOnce: Sendable {
    private let onFinish: Mutex<(@Sendable (StreamOutcome) -> Void)?>

    init(_ onFinish: @escaping @Sendable (StreamOutcome) -> Void) { self.onFinish = Mutex(onFinish) }

    func callAsFunction(_ outcome: StreamOutcome) {
        let body = onFinish.withLock { body in
            defer { body = nil }
            return body
        }
        body?(outcome)
    }

    deinit { self(.cancelled) }
}

// A class: it holds the iterator that `next` advances in place.
final class ObservedState {
    var base: ChatStream.AsyncIterator
    let onEvent: @Sendable (ChatStreamEvent) -> Void
    let finish: FinishOnce
    var finished = false

    init(base: ChatStream.AsyncIterator, onEvent: @escaping @Sendable (ChatStreamEvent) -> Void, finish: FinishOnce) {
        self.base = base
        self.onEvent = onEvent
        self.finish = finish
    }

    func next() async throws -> ChatStreamEvent? {
        guard !finished else { return nil }
        do {
            if let event = try await base.next() {
                onEvent(event)
                return event
            }
            end(.finished)
            return nil
        } catch is CancellationError {
            end(.cancelled)
            throw CancellationError()
        } catch {
            end(Task.isCancelled ? .cancelled : .failed(error))
            throw error
        }
    }

    private func end(_ outcome: StreamOutcome) {
        guard !finished else { return }
        finished = true
        finish(outcome)
    }

    // An iterator dropped midway: report it now rather than when the stream value goes too.
    deinit {
        if !finished { finish(.cancelled) }
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
