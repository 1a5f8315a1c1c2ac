//go:build !unix

package checks

import "os/exec"

// ownProcessGroup does nothing where there are no process groups: a
// timeout kills the action's shell only (the exec.CommandContext default).
func ownProcessGroup(cmd *exec.Cmd) {}
