//go:build !unix

package main

// umask is a no-op where there is no umask; the socket is still chmod 0600.
func umask(m int) int { return m }
