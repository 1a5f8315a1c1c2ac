package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/seed-c7906467/smudge"
)

// agentOptions are the agent's settings that are not the library's.
type agentOptions struct {
	control  string          // unix socket path of the control endpoint; "" = none
	checks   checkOptions    // the check agent (checkagent.go)
	liveness livenessOptions // the liveness store and its HTTP API (liveness.go)
}

func (a *agentOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&a.control, "control", os.Getenv(envControl),
		"`path` of a unix socket for local control (`smudge keys`); only this user may use it ($"+envControl+")")
	a.checks.register(fs)
	a.liveness.register(fs)
}

// envControl is the environment variable for -control.
const envControl = "SMUDGE_CONTROL_SOCKET"

// warnIfExposed warns when the node listens beyond loopback in clear.
func warnIfExposed(cfg smudge.Config, c *smudge.Cluster, stderr io.Writer) {
	if len(cfg.Keys) > 0 {
		return
	}
	if ip := c.LocalAddr().Addr(); !ip.IsLoopback() {
		fmt.Fprintf(stderr, "smudge: WARNING: listening on %v without encryption: anyone who can reach it can join the cluster or change its view; set %s\n",
			c.LocalAddr(), smudge.EnvVarEncryptionKeys)
	}
}

// startControl serves the control API on a unix socket that only this user
// can open (mode 0600): file permissions are its authentication.
func (a *agentOptions) startControl(c *smudge.Cluster) (stop func(), err error) {
	if a.control == "" {
		return func() {}, nil
	}
	if err := removeStaleSocket(a.control); err != nil {
		return nil, err
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", a.control)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(a.control, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	srv := &http.Server{Handler: controlHandler(c), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.Remove(a.control)
	}, nil
}

// removeStaleSocket removes a socket file left by a process that died, and
// refuses to take over one that still answers or a file that is not a socket.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket: %s exists and is not a socket", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("control socket: %s is in use by another agent", path)
	}
	return os.Remove(path)
}

// keyInfo describes a key without revealing it.
type keyInfo struct {
	Fingerprint string `json:"fingerprint"` // first 8 bytes of SHA-256, hex
	Bits        int    `json:"bits"`
	Primary     bool   `json:"primary"`
}

func fingerprint(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:8])
}

// controlHandler is the control API:
//
//	GET  /v1/keys                   the ring, as fingerprints
//	POST /v1/keys/install   (body: base64 key)
//	POST /v1/keys/use       (body: base64 key)
//	POST /v1/keys/remove    (body: base64 key)
func controlHandler(c *smudge.Cluster) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		keys := c.Keys()
		if keys == nil {
			http.Error(w, smudge.ErrEncryptionOff.Error(), http.StatusConflict)
			return
		}
		infos := make([]keyInfo, len(keys))
		for i, k := range keys {
			infos[i] = keyInfo{Fingerprint: fingerprint(k), Bits: 8 * len(k), Primary: i == 0}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(infos)
	})
	ops := map[string]func([]byte) error{"install": c.InstallKey, "use": c.UseKey, "remove": c.RemoveKey}
	for name, op := range ops {
		mux.HandleFunc("POST /v1/keys/"+name, func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1024))
			if err != nil {
				http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
				return
			}
			key, err := decodeKey(string(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if err := op(key); err != nil {
				status := http.StatusBadRequest
				if errors.Is(err, smudge.ErrEncryptionOff) {
					status = http.StatusConflict
				}
				http.Error(w, err.Error(), status)
				return
			}
			fmt.Fprintf(w, "%s %s: done\n", name, fingerprint(key))
		})
	}
	return mux
}

// decodeKey parses a base64 AES key, never echoing it in errors.
func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("the key is not valid base64 (value not shown)")
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("the key is %d bytes: an AES key is 16, 24 or 32 bytes", n)
	}
	return k, nil
}
