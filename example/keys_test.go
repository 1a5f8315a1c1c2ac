package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge"
)

func startKeyedNode(t *testing.T, keys ...[]byte) *smudge.Cluster {
	t.Helper()
	cfg := smudge.DefaultConfig()
	cfg.ListenPort = 0
	cfg.MulticastEnabled = false
	cfg.LogThreshold = smudge.LogWarn
	cfg.Keys = keys
	cfg.ClusterName = "keys-" + t.Name()
	c, err := smudge.New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown() })
	return c
}

func keysCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runKeys(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestKeysSubcommandRotatesThroughTheControlSocket(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 16)
	c := startKeyedNode(t, k1)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := agentOptions{control: sock}
	stop, err := agent.startControl(c)
	require.NoError(t, err)
	defer stop()

	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "only this user may use the control socket")

	code, out, _ := keysCmd(t, "generate")
	require.Equal(t, exitOK, code)
	k2b64 := strings.TrimSpace(out)
	k2, err := base64.StdEncoding.DecodeString(k2b64)
	require.NoError(t, err)
	require.Len(t, k2, 32)

	for _, step := range []string{"install", "use", "remove"} {
		arg := k2b64
		if step == "remove" {
			arg = base64.StdEncoding.EncodeToString(k1)
		}
		code, out, errOut := keysCmd(t, "-control", sock, step, arg)
		require.Equal(t, exitOK, code, errOut)
		assert.Contains(t, out, step+" ")
		assert.NotContains(t, out, arg, "keys are never echoed")
	}
	assert.Equal(t, [][]byte{k2}, c.Keys())

	code, out, _ = keysCmd(t, "-control", sock, "list")
	require.Equal(t, exitOK, code)
	assert.Equal(t, fingerprint(k2)+" AES-256 primary\n", out)

	// Errors are clear and never echo key material.
	code, _, errOut := keysCmd(t, "-control", sock, "remove", k2b64)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "primary")
	code, _, errOut = keysCmd(t, "-control", sock, "install", "c2VjcmV0")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "6 bytes")
	assert.NotContains(t, errOut, "c2VjcmV0")
	code, _, errOut = keysCmd(t, "list")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "-control")

	// A second agent cannot take over a live socket.
	_, err = (&agentOptions{control: sock}).startControl(c)
	assert.ErrorContains(t, err, "in use")
}

func TestControlOnAnUnencryptedNodeSaysSo(t *testing.T) {
	c := startKeyedNode(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	stop, err := (&agentOptions{control: sock}).startControl(c)
	require.NoError(t, err)
	defer stop()
	code, _, errOut := keysCmd(t, "-control", sock, "list")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "encryption is off")

	// A stale socket file from a dead agent is replaced.
	stop()
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	stop2, err := (&agentOptions{control: sock}).startControl(c)
	require.NoError(t, err)
	stop2()
}

func TestWarnsWhenListeningBeyondLoopbackInClear(t *testing.T) {
	cfg := smudge.DefaultConfig()
	cfg.ListenIP, cfg.ListenPort, cfg.AdvertiseAddr = net.IPv4zero, 0, "127.0.0.1"
	cfg.MulticastEnabled, cfg.LogThreshold = false, smudge.LogWarn
	c, err := smudge.New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	defer c.Shutdown()
	var stderr bytes.Buffer
	warnIfExposed(cfg, c, &stderr)
	assert.Contains(t, stderr.String(), "without encryption")
	assert.Contains(t, stderr.String(), smudge.EnvVarEncryptionKeys)

	stderr.Reset()
	loop := startKeyedNode(t) // 127.0.0.1, no key: fine
	warnIfExposed(loop.Config(), loop, &stderr)
	assert.Empty(t, stderr.String())
}
