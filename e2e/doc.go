// Package e2e holds smudge's end-to-end tests across real containers: they
// build the demo image (the repository's Dockerfile, FROM scratch) once per
// run, start nodes in Docker networks of their own, and read what every node
// sees from its output (docker logs). They skip, saying why, when no Docker
// daemon answers.
//
//	make e2e                          # these tests alone, verbose, with timings
//	go test -count=1 -v ./e2e/        # the same
//
// Set SMUDGE_E2E_REQUIRE_DOCKER=1 to make a missing daemon a failure instead
// of a skip (for CI machines that are meant to have one).
//
// Every container, network and image a run creates carries the label
// smudge-e2e=<run id> and is removed when the run ends, also when it fails.
// Should a run be killed before it could clean up, the next run removes what
// is left of it after an hour.
package e2e
