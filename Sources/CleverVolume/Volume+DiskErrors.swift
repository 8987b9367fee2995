#if canImport(Glibc)
import Glibc
#endif
import CleverNBD
import CleverReplication
import Foundation
import Logging

/// Disk errors (DRBD's `on-io-error detach`): a backing store that fails a read, a write or an `fdatasync` is
/// detached at once. Its disk becomes Failed (recorded in the metadata, which lives elsewhere), it never
/// acknowledges anything again, and the other host holds the only UpToDate copy:
///
/// - A Secondary that fails a replicated write, zero, flush or resync write leaves the link without
///   acknowledging it (goodbye "…detached") and stays StandAlone; the Primary then counts every unacknowledged
///   write as missing on the peer (dirty bits), exactly as for a lost link, and goes on alone (after fencing
///   has outdated the peer, with `fencing: resource-only`).
/// - A Primary fails the operation and every later one with EIO; its status (disk Failed, promotion score
///   -INFINITY) has the cluster move the VM to the peer, whose copy holds every acknowledged write (under
///   protocol C a write is acknowledged only once both hosts wrote it). DRBD would go on Diskless, reading
///   through the peer; this volume has no remote reads, so the VM restarts on the peer instead.
///
/// An `fdatasync` failure is never carried on from: after it the kernel may have dropped the dirty pages, so a
/// later sync that succeeds proves nothing (PostgreSQL's "fsyncgate"). ENOSPC on the Primary is not a failing
/// disk: it is returned as ENOSPC, the volume stays attached, and the range is marked out of sync, since the
/// peer may have written what this host could not.
///
/// Metadata, bitmap and activity-log write failures are kept in `metadataErrors` until a later save of the same
/// thing succeeds; while any is set, promote and demote are refused with the error.
extension Volume {
    /// Detaches the backing store after `operation` failed with `error` (call with the lock not held).
    func detach(_ operation: String, _ error: any Error) {
        self.lock.lock()
        guard self.detachedReason == nil else {
            self.lock.unlock()
            return
        }
        let reason = "\(operation) on \(self.config.backing) failed: \(error)"
        self.detachedReason = reason
        self.metadata.disk = .failed
        self.persistLocked()
        let role = self.role
        // A Secondary leaves the link without acknowledging what it could not write; a Primary keeps the link, so
        // the peer sees it demote and can be promoted while connected.
        let actions = role == .secondary
            ? self.linkControl.disconnect(reason: "the disk of \(self.config.name) on \(self.config.node) failed; detached") : []
        self.refreshConnectionStateLocked()
        self.lock.broadcast()
        self.lock.unlock()
        let next = role == .primary ? "I/O fails from here on; the peer holds the only UpToDate copy"
            : "the peer goes on alone with the blocks marked out of sync"
        self.logger.error("\(reason): backing store detached (on-io-error detach); \(next)")
        self.perform(actions)
    }

    /// Why I/O is refused (the backing store is detached), or nil.
    var detachedLocked: Bool { self.detachedReason != nil }

    /// Runs a replicated operation on the Secondary: nil when done, else why the link ends (it detached). No lock
    /// on this hot path: a detached Secondary has left the link, so no further frame reaches it.
    func applyReplicated(_ operation: String, _ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            self.detach(operation, error)
            return "\(operation) failed on the backing store (\(error)); detached"
        }
    }

    /// A local write or zero on the Primary failed: ENOSPC keeps the disk (the range is out of sync: the peer may
    /// hold it), anything else detaches. Returns the error for the client.
    func localWriteFailed(_ operation: String, _ error: any Error, offset: UInt64, length: UInt64) -> NBD.ErrorCode {
        let code = Self.errno(of: error)
        if code == .noSpace {
            self.logger.error("\(operation): \(error)")
            self.lock.lock()
            self.markDirtyLocked(offset: offset, length: length)
            self.lock.unlock()
        } else {
            self.detach(operation, error)
        }
        return code
    }

    /// Records a failed metadata, bitmap or activity-log write (`what`), or clears it after a good one.
    func noteMetadataLocked(_ what: String, _ error: (any Error)?) {
        if let error {
            if self.metadataErrors[what] == nil { self.logger.error("saving the \(what): \(error); role changes are refused until it can be saved") }
            self.metadataErrors[what] = "\(error)"
        } else if self.metadataErrors.removeValue(forKey: what) != nil {
            self.logger.notice("the \(what) is saved again")
        }
    }

    /// Why a promote or demote must not happen now: a metadata write failed (tried again first), or nil.
    func roleChangeRefusalLocked(_ change: String) -> String? {
        if self.metadataErrors["bitmap"] != nil {
            self.bitmapChanged = true
            self.saveBitmapLocked()
        }
        if self.metadataErrors["metadata"] != nil { self.persistLocked() }
        guard !self.metadataErrors.isEmpty else { return nil }
        let errors = self.metadataErrors.sorted { $0.key < $1.key }.map { "saving the \($0.key): \($0.value)" }
        return "volume \(self.config.name): not \(change): \(errors.joined(separator: "; ")) (metadata in \(self.config.metaDir))"
    }
}
