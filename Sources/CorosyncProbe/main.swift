// corosync-probe: joins a CPG group through the Corosync binding and prints what it sees as JSON lines
// (one object per line, key "event"). Used by the lab tests; handy by hand inside `clevervm-lab exec`.
//
//   corosync-probe --group NAME [--send N] [--when-members M] [--until-messages K] [--no-quorum]
//
// --send N: once the group view has at least M members (default 1), send N messages "NODE:PID:i".
// Lines read on stdin are sent as messages too. Exits after K deliveries, on stdin EOF when nothing
// else keeps it running, or on SIGTERM/SIGINT.
import Corosync
import Foundation

struct Options {
    var group = "clevervm-probe"
    var send = 0
    var whenMembers = 1
    var untilMessages: Int?
    var quorum = true
    var cmap = true

    static func parse(_ arguments: [String]) -> Result<Options, ProbeFailure> {
        var options = Options()
        var rest = arguments[...]
        func value(_ flag: String) -> Result<String, ProbeFailure> {
            guard let next = rest.popFirst() else { return .failure(ProbeFailure("\(flag) needs a value")) }
            return .success(next)
        }
        func number(_ flag: String) -> Result<Int, ProbeFailure> {
            value(flag).flatMap { text in
                Int(text).map { .success($0) } ?? .failure(ProbeFailure("\(flag) needs a number, got \"\(text)\""))
            }
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--group":
                switch value(flag) {
                case .success(let v): options.group = v
                case .failure(let e): return .failure(e)
                }
            case "--send", "--when-members", "--until-messages":
                switch number(flag) {
                case .success(let n):
                    if flag == "--send" { options.send = n }
                    else if flag == "--when-members" { options.whenMembers = n }
                    else { options.untilMessages = n }
                case .failure(let e): return .failure(e)
                }
            case "--no-quorum": options.quorum = false
            case "--no-cmap": options.cmap = false
            default: return .failure(ProbeFailure("unknown argument \"\(flag)\""))
            }
        }
        return .success(options)
    }
}

struct ProbeFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct Line: Encodable {
    var event: String
    var node: UInt32?
    var pid: UInt32?
    var members: [ProcessGroup.Member]?
    var joined: [ProcessGroup.Change]?
    var left: [ProcessGroup.Change]?
    var text: String?
    var index: Int?
    var ring: ProcessGroup.RingID?
    var nodes: [UInt32]?
    var quorate: Bool?
    var awaitingVerdict: Bool?
    var quorumNodes: [VoteQuorum.Node]?
    var expectedVotes: UInt32?
    var configured: [ConfiguredNode]?
    var message: String?
    var code: String?
    var time: Double = Date().timeIntervalSince1970
}

let output = LineWriter()

final class LineWriter: @unchecked Sendable {
    // Safety: `lock` serialises encoding and writing.
    private let lock = NSLock()
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    func emit(_ line: Line) {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard var data = try? self.encoder.encode(line) else { return }
        data.append(0x0A)
        FileHandle.standardOutput.write(data)
    }
}

func fail(_ message: String, code: String? = nil) -> Never {
    output.emit(Line(event: "error", message: message, code: code))
    exit(1)
}

let options: Options
switch Options.parse(Array(CommandLine.arguments.dropFirst())) {
case .success(let parsed): options = parsed
case .failure(let failure): fail("corosync-probe: \(failure.description)", code: "usage")
}

signal(SIGPIPE, SIG_IGN)

let group: ProcessGroup
do {
    group = try ProcessGroup(joining: options.group)
} catch {
    fail(error.description, code: error.code.rawValue)
}
output.emit(Line(event: "joined", node: group.local.nodeID, pid: group.local.pid, text: options.group))

if options.cmap {
    do {
        let map = try ClusterMap()
        output.emit(Line(event: "cmap", node: try map.localNodeID(), configured: try map.nodes()))
    } catch {
        output.emit(Line(event: "error", message: error.description, code: error.code.rawValue))
    }
}

let quorum: VoteQuorum?
if options.quorum {
    do {
        let tracker = try VoteQuorum()
        quorum = tracker
        Task.detached {
            for await status in tracker.updates {
                output.emit(
                    Line(
                        event: "quorum", nodes: status.members, quorate: status.quorate,
                        awaitingVerdict: status.awaitingVerdict, quorumNodes: status.nodes,
                        expectedVotes: status.expectedVotes))
            }
        }
    } catch {
        fail(error.description, code: error.code.rawValue)
    }
} else {
    quorum = nil
}

// Lines on stdin are sent as messages, in order. A thread of its own: readLine blocks, which must not
// happen on the cooperative pool.
Thread {
    while let line = readLine() {
        let sent = DispatchSemaphore(value: 0)
        Task {
            do throws(CorosyncError) { try await group.send(Array(line.utf8)) } catch {
                output.emit(Line(event: "error", message: error.description, code: error.code.rawValue))
            }
            sent.signal()
        }
        sent.wait()
    }
}.start()

nonisolated(unsafe) var signalSources: [any DispatchSourceSignal] = []
for signalNumber in [SIGTERM, SIGINT] {
    signal(signalNumber, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
    source.setEventHandler {
        group.close()
        quorum?.close()
        output.emit(Line(event: "exit", message: "signal \(signalNumber)"))
        exit(0)
    }
    source.resume()
    signalSources.append(source)
}

Task.detached {
    var delivered = 0
    var sent = false
    for await event in group.events {
        switch event {
        case .message(let message):
            delivered += 1
            output.emit(
                Line(
                    event: "message", node: message.sender.nodeID, pid: message.sender.pid,
                    text: String(decoding: message.payload, as: UTF8.self), index: delivered))
            if let until = options.untilMessages, delivered >= until {
                group.close()
                quorum?.close()
                output.emit(Line(event: "exit", message: "delivered \(delivered) messages"))
                exit(0)
            }
        case .view(let view):
            output.emit(Line(event: "view", members: view.members, joined: view.joined, left: view.left, text: view.group))
            if !sent, options.send > 0, view.members.count >= options.whenMembers {
                sent = true
                let local = group.local
                Task.detached {
                    for index in 1...options.send {
                        do throws(CorosyncError) { try await group.send(Array("\(local.nodeID):\(local.pid):\(index)".utf8)) } catch {
                            output.emit(Line(event: "error", message: error.description, code: error.code.rawValue))
                        }
                    }
                }
            }
        case .ring(let ring):
            output.emit(Line(event: "ring", ring: ring.id, nodes: ring.nodes))
        case .closed(let reason):
            if let reason {
                fail(reason.description, code: reason.code.rawValue)
            }
            output.emit(Line(event: "exit", message: "closed"))
            exit(0)
        }
    }
}

dispatchMain()
