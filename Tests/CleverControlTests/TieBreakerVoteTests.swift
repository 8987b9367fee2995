import CleverControl
import CleverModel
import Testing

/// The tie-breaker's vote read from `corosync-quorumtool -s` (outputs as Corosync 3.1.7 and corosync-qdevice 3.0.3 print
/// them in the lab), and the line `status` shows when it is lost.
struct TieBreakerVoteTests {
    static func output(flags: String) -> String {
        """
        Quorum information
        ------------------
        Date:             Wed Dec  2 18:51:48 2026
        Quorum provider:  corosync_votequorum
        Nodes:            2
        Node ID:          1
        Ring ID:          1.21
        Quorate:          Yes

        Votequorum information
        ----------------------
        Expected votes:   3
        Highest expected: 3
        Total votes:      \(flags.hasPrefix("A,V") ? 3 : 2)
        Quorum:           2
        Flags:            Quorate Qdevice

        Membership information
        ----------------------
            Nodeid      Votes    Qdevice Name
                 1          1    \(flags) alpha (local)
                 2          1    A,V,NMW beta
                 0          1            Qdevice
        """
    }

    @Test func aVotingQdeviceIsNoProblem() throws {
        let vote = try #require(TieBreakerVote(qnetd: "198.51.100.1", quorumTool: Self.output(flags: "A,V,NMW")))
        #expect(vote.voting && vote.flags == "A,V,NMW")
        #expect(vote.problem(localNode: "alpha") == nil)
    }

    @Test(arguments: ["A,NV,NMW", "NA,NV,NMW", "NR"])
    func aQdeviceThatDoesNotVoteIsSaidInStatus(flags: String) throws {
        let vote = try #require(TieBreakerVote(qnetd: "198.51.100.1", quorumTool: Self.output(flags: flags)))
        #expect(!vote.voting && vote.flags == flags)
        let problem = try #require(vote.problem(localNode: "alpha"))
        #expect(problem.contains("the tie-breaker does not vote for alpha"))
        #expect(problem.contains(flags == "NR" ? "corosync-qdevice is not running here" : "not connected to corosync-qnetd on 198.51.100.1"))
    }

    @Test func withoutAMembershipLineNothingIsKnown() {
        #expect(TieBreakerVote(qnetd: "198.51.100.1", quorumTool: "Cannot initialize QUORUM service") == nil)
    }

    @Test func aNodeLineWithoutAQdeviceColumnIsNotVoting() throws {
        let text = "Membership information\n----------------------\n    Nodeid      Votes Name\n         1          1 alpha (local)\n"
        let vote = try #require(TieBreakerVote(qnetd: "198.51.100.1", quorumTool: text))
        #expect(!vote.voting && vote.flags == nil)
    }

    @Test func statusShowsTheLostTieBreakerOnlyWhileQuorate() {
        var report = StatusReport(cluster: "mba7lab", localNode: "alpha", coordinator: "alpha", quorate: true, configEpoch: 1,
                                  nodes: [], resources: [], marks: [], pendingActions: [], now: Timestamp(seconds: 0))
        report.tieBreaker = TieBreakerVote(qnetd: "198.51.100.1", voting: false, flags: "A,NV,NMW")
        #expect(report.render().contains("! the tie-breaker does not vote for alpha"))
        report.quorate = false
        #expect(!report.render().contains("tie-breaker"), "without quorum the status says NO QUORUM, not this")
        report.quorate = true
        report.tieBreaker?.voting = true
        #expect(!report.render().contains("tie-breaker"))
    }
}
