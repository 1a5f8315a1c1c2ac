//go:build unix

package main

import "syscall"

// umask sets the process umask, so the control socket is created private.
func umask(m int) int { return syscall.Umask(m) }
