import CProcessLauncher
import Foundation
import SluiceCore

#if canImport(Glibc)
import Glibc
#endif

/// A process Sluice started and owns: the kernel kills it if Sluice dies, however Sluice dies
/// (see `sluice_launch`), so a SIGKILLed gateway leaves no orphan behind.
struct ChildProcess: Sendable, Hashable {
    let pid: pid_t

    /// How a child ended.
    enum Termination: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        var description: String {
            switch self {
            case .exited(let code): "exited with status \(code)"
            case .signalled(let signal): "was killed by signal \(signal)\(signal == SIGKILL ? " (SIGKILL)" : signal == SIGSEGV ? " (SIGSEGV)" : "")"
            }
        }
    }

    /// Starts `executable` with `arguments`; its output is appended to `logFile`.
    static func launch(executable: String, arguments: [String], logFile: String?) throws -> ChildProcess {
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let error = argv.withUnsafeBufferPointer { buffer in
            if let logFile {
                return logFile.withCString { sluice_launch(executable, buffer.baseAddress, $0, &pid) }
            }
            return sluice_launch(executable, buffer.baseAddress, nil, &pid)
        }
        guard error == 0 else {
            throw SluiceError(.internalError, "Could not start \(executable): \(String(cString: strerror(error)))")
        }
        return ChildProcess(pid: pid)
    }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Collects the exit status without blocking: nil while the process runs.
    func reap() -> Termination? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == 0 { return nil }
        if result < 0 { return errno == ECHILD ? .exited(-1) : nil }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// Whether the process has ended, without collecting its status (the supervisor's watcher
    /// collects it, and logs how it ended).
    var hasExited: Bool {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return errno == ECHILD }
        return info._sifields._sigchld.si_pid == pid
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`; returns how it ended.
    @discardableResult
    func terminate(grace: Duration = .seconds(5)) async -> Termination {
        if let ended = reap() { return ended }
        send(SIGTERM)
        let deadline = ContinuousClock.now + grace
        // Detached from the caller's cancellation: stopping must finish even when the task that
        // asked for it is being cancelled.
        return await Task.detached {
            while ContinuousClock.now < deadline {
                if let ended = reap() { return ended }
                try? await Task.sleep(for: .milliseconds(20))
            }
            send(SIGKILL)
            while true {
                if let ended = reap() { return ended }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }.value
    }
}

/// A free TCP port on 127.0.0.1, as the kernel hands them out (bind to 0, read, close).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SluiceError(.internalError, "socket() failed: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw SluiceError(.internalError, "bind() failed: \(String(cString: strerror(errno)))") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw SluiceError(.internalError, "getsockname() failed: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}
