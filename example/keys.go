package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// runKeys is `smudge keys`: manage a running agent's encryption keys
// through its control socket, or generate a new key.
//
//	smudge keys generate
//	smudge keys [-control PATH] list
//	smudge keys [-control PATH] install|use|remove KEY
//
// A rolling rotation: install the new key on every node, then use it on
// every node, then remove the old key from every node.
func runKeys(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smudge keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	control := fs.String("control", os.Getenv(envControl), "`path` of the agent's control socket ($"+envControl+")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage:\n  smudge keys generate\n  smudge keys [-control PATH] list\n  smudge keys [-control PATH] install|use|remove BASE64-KEY\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return exitUsage
	}
	if rest[0] == "generate" {
		k := make([]byte, 32)
		rand.Read(k)
		fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(k))
		return exitOK
	}
	if *control == "" {
		fmt.Fprintf(stderr, "smudge keys: -control (or $%s) is required: the agent's control socket\n", envControl)
		return exitUsage
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *control)
		}},
	}
	var resp *http.Response
	var err error
	switch {
	case rest[0] == "list" && len(rest) == 1:
		resp, err = client.Get("http://agent/v1/keys")
	case (rest[0] == "install" || rest[0] == "use" || rest[0] == "remove") && len(rest) == 2:
		if _, kerr := decodeKey(rest[1]); kerr != nil {
			fmt.Fprintf(stderr, "smudge keys: %v\n", kerr)
			return exitUsage
		}
		resp, err = client.Post("http://agent/v1/keys/"+rest[0], "text/plain", strings.NewReader(rest[1]))
	default:
		fs.Usage()
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "smudge keys: %v\n", err)
		return exitError
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "smudge keys: %s", body)
		return exitError
	}
	if rest[0] != "list" {
		stdout.Write(body)
		return exitOK
	}
	var infos []keyInfo
	if err := json.Unmarshal(body, &infos); err != nil {
		fmt.Fprintf(stderr, "smudge keys: bad answer from the agent: %v\n", err)
		return exitError
	}
	for _, k := range infos {
		mark := ""
		if k.Primary {
			mark = " primary"
		}
		fmt.Fprintf(stdout, "%s AES-%d%s\n", k.Fingerprint, k.Bits, mark)
	}
	return exitOK
}
