// Package journal covers fresh tokens from the moment their caller knows
// what it must of them until Vault holds them: should the node die meanwhile, the active node (the same after
// a restart, a new one after a failover) finds the token in the journal and
// settles it (the caller's Recover callback revokes it, say).
//
// It does what a write-ahead entry per token did, in fewer storage commits,
// and covers longer:
//   - Callers at once share one page: one commit covers them all, and each
//     waits for it (Cover) before its answer can leave.
//   - A caller hands its token over (HandOver) once something else holds it:
//     a lease, a static role, or its revocation. Once every token of a page
//     is handed over, the page is done handoverDelay (2 s) later, so that
//     Vault has long stored the leases of the answers (it does so right
//     after the plugin returns).
//   - A done page is written over by the next batch's page: the commit that
//     covers new tokens also lets the old ones go, so a busy mount commits
//     once per batch and deletes nothing. A page that no batch takes within
//     reuseWindow (1 s) is deleted in the background, a commit no caller
//     waits for.
//
// So every token is covered from the commit of its page until well after
// its lease is stored: the write-ahead entry's gap (a crash between deleting
// the entry and Vault storing the lease left a token nobody held) is closed.
// The price is on the other side: a crash within handoverDelay (plus at most
// reuseWindow) of the last answer of a page's batch (the callers of a batch
// answer together, unless one is slow) has recovery settle the page's tokens
// although their leases live; their consumers read new ones, and the leases'
// own revocations later find the tokens ended. A plugin that stops cleanly
// (seal, step-down, unmount, upgrade) closes the journal, which removes the
// done pages first.
//
// Tokens whose whole life is shorter than MinAge need no cover: they end
// before recovery could act.
//
// The journal knows nothing of what it covers: an entry is any value that
// encodes to JSON, and Recover hands each entry of a page nobody handed over
// back to the caller to settle.
package journal
