// Package liveness is a liveness store over a smudge cluster: for each
// member its id, address, status, the local time it was last heard from and
// whether it is decommissioned, served over HTTP (Store.Handler) as a text
// answer for curl, an HTML page and JSON; and decommissioning: a member
// decommissioned through any node leaves the cluster and stays gone.
//
//	c, _ := smudge.New(cfg)
//	store, err := liveness.New(c, liveness.Config{ID: "1", Token: token, StateDir: dir})
//	if errors.Is(err, liveness.ErrDecommissioned) {
//		log.Fatal(err) // this id was decommissioned: do not start
//	}
//	c.Start(ctx)
//	http.ListenAndServe("127.0.0.1:8080", store.Handler())
//
// # Ids
//
// Each member's id travels in its metadata (smudge.Node.Meta): the store
// owns the local node's metadata. A member can appear before its metadata
// arrives; until then its id is unknown ("" in Member, null in JSON).
//
// # Decommissioning
//
// Store.Decommission (POST /bye?id=ID with "Authorization: Bearer TOKEN")
// records the id, saves it in the state directory, and broadcasts a short
// message naming it, signed with HMAC-SHA256 under the token shared by the
// members and stamped with its issue time. A member holding the same token
// that hears the message records the id in turn; the member whose id it is
// leaves the cluster gracefully (smudge.Cluster.Leave) and calls
// Config.OnDecommissioned. It leaves once every other live member holding
// the token shows, in its metadata, that it knows (or after
// Config.LeaveTimeout), so the news does not leave with it when the request
// was sent to the decommissioned node itself.
//
// Security: without a token a node refuses /bye and ignores (and counts)
// decommission messages, since it cannot check them. A stranger who can
// send packets to an unencrypted cluster cannot forge a decommission
// without the token; with smudge.Config.Keys, it cannot even send one. A
// message older (or newer) than Config.MaxMessageAge is ignored, and within
// that window a replayed message can only repeat what it already did: a
// decommissioned id stays decommissioned. The fingerprint of the token in
// the metadata and the signed messages let an eavesdropper on an
// unencrypted cluster try to guess a weak token offline: use a random one
// (at least MinTokenBytes bytes), and smudge.Config.Keys beyond a trusted
// network.
//
// # Members that were not there
//
// A broadcast reaches the members live when it is sent. Members that join
// later (or come back from a partition, or restart without a state
// directory) learn the decommissioned ids this way: every member's
// metadata carries a digest of its set (count and hash) and the
// fingerprint of its token. When a member sees an ALIVE member holding the
// same token whose digest differs from its own, and it has the lowest
// address among the ALIVE members holding the token whose digest equals
// its own, it re-broadcasts its whole set, freshly signed, after
// Config.SyncDelay. So a newcomer costs one re-broadcast (one per distinct
// set), not one per member; the sets then merge. Every Config.SyncInterval
// the digests are compared again, which repairs a lost re-broadcast. A
// restarted node whose id is in the set it learns leaves again.
//
// With Config.StateDir set, a node whose id is decommissioned refuses to
// start: New returns an error wrapping ErrDecommissioned.
package liveness
