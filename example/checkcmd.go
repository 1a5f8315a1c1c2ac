package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/seed-c7906467/smudge"
	"github.com/seed-c7906467/smudge/checks"
)

// runCheck is `smudge check`: it sends a checks file to an agent's CLI
// endpoint, which publishes it to the cluster, and prints every node's
// results.
//
//	smudge check -file checks.json [-json] [-server 127.0.0.1:5924] [-timeout 30s]
//
// The request is authenticated with a token derived from the first key of
// SMUDGE_ENCRYPTION_KEYS (the cluster's), or SMUDGE_CLI_TOKEN when set.
// Output: per node, a line naming it, its table and summary; then the
// nodes that never answered; then a summary of all. Exit status: 0 if
// every live member answered and every check passed, 1 if a check failed,
// a node did not answer or the agent could not be used, 2 for a bad file
// or flag.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smudge check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "`path` of the checks file (JSON)")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of tables")
	server := fs.String("server", defaultCLIBind, "`ADDR` of the agent's CLI endpoint (its -cli-bind)")
	timeout := fs.Duration("timeout", defaultCheckWait, "how long to wait for the nodes' results (1s to 10m)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: smudge check -file FILE [-json] [-server ADDR] [-timeout D]\n\n"+
			"Sends the checks of FILE to every live member through the agent at -server, and\n"+
			"prints each node's results. The agent needs the cluster's key (%s, the\n"+
			"same here) or %s. Exit status: 0 if all answered and passed, 1 if a\n"+
			"check failed or a node did not answer, 2 for a bad file or flag.\n\nFlags:\n",
			smudge.EnvVarEncryptionKeys, envCLIToken)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "smudge check: "+format+"\n", a...)
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(exitUsage, "unexpected argument %q (give the file with -file)", fs.Arg(0))
	case *file == "":
		return fail(exitUsage, "-file is required: the checks file")
	case *timeout < time.Second || *timeout > maxCheckWait:
		return fail(exitUsage, "-timeout %v: from 1s to %v", *timeout, maxCheckWait)
	}
	if _, err := loopbackAddr(*server); err != nil {
		return fail(exitUsage, "-server %q: %v", *server, err)
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if _, err := checks.Parse(data); err != nil {
		return fail(exitUsage, "%s: %v", *file, err)
	}
	token, err := cliTokenFromEnv()
	if err != nil {
		return fail(exitUsage, "%v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout+15*time.Second)
	defer cancel()
	u := "http://" + *server + "/v1/checks?timeout=" + url.QueryEscape(timeout.String())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return fail(exitError, "%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(exitError, "the agent at %s: %v (is it running, with -cli-bind %s?)", *server, err, *server)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fail(exitError, "reading the agent's answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail(exitError, "the agent at %s: %s: %s", *server, resp.Status, strings.TrimSpace(string(body)))
	}
	var res checkResponse
	if err := json.Unmarshal(body, &res); err != nil {
		return fail(exitError, "the agent's answer: %v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = writeCheckResponse(stdout, res)
	}
	if err != nil {
		return fail(exitError, "%v", err)
	}
	if !res.allPassed() {
		return exitError
	}
	return exitOK
}

// cliTokenFromEnv returns SMUDGE_CLI_TOKEN, or the token of the first key
// of SMUDGE_ENCRYPTION_KEYS.
func cliTokenFromEnv() (string, error) {
	if t := strings.TrimSpace(os.Getenv(envCLIToken)); t != "" {
		return t, nil
	}
	keys := strings.TrimSpace(os.Getenv(smudge.EnvVarEncryptionKeys))
	if keys == "" {
		return "", fmt.Errorf("no credentials for the agent: set %s (the cluster's keys, as for the agent) or %s", smudge.EnvVarEncryptionKeys, envCLIToken)
	}
	first, _, _ := strings.Cut(keys, ",")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(first))
	if err != nil {
		return "", fmt.Errorf("%s: the first key is not valid base64 (value not shown)", smudge.EnvVarEncryptionKeys)
	}
	return cliToken(key), nil
}

// allPassed reports whether every expected node answered without error
// and every check passed.
func (r checkResponse) allPassed() bool {
	if len(r.Missing) > 0 {
		return false
	}
	for _, n := range r.Nodes {
		if n.Error != "" || n.Report == nil || n.Report.Failed > 0 {
			return false
		}
	}
	return true
}

// writeCheckResponse prints every node's results, the nodes that did not
// answer, and a summary.
func writeCheckResponse(w io.Writer, r checkResponse) error {
	var b strings.Builder
	total := checks.Report{}
	failedNodes := 0
	for _, n := range r.Nodes {
		actions := "actions disabled"
		if n.ActionsEnabled {
			actions = "actions enabled"
		}
		if n.Error != "" || n.Report == nil {
			failedNodes++
			fmt.Fprintf(&b, "== %s (%s): ERROR: %s\n\n", n.Node, actions, n.Error)
			continue
		}
		if n.Report.Failed > 0 {
			failedNodes++
		}
		fmt.Fprintf(&b, "== %s (%s)\n", n.Node, actions)
		if err := checks.WriteTable(&b, n.Report.Results); err != nil {
			return err
		}
		b.WriteString("\n")
		total.Checks += n.Report.Checks
		total.Passed += n.Report.Passed
		total.Failed += n.Report.Failed
	}
	if len(r.Missing) > 0 {
		fmt.Fprintf(&b, "NO ANSWER from %d %s: %s\n", len(r.Missing), checkPlural(len(r.Missing), "node", "nodes"), strings.Join(r.Missing, ", "))
	}
	fmt.Fprintf(&b, "%d of %d %s answered, %d with failures; %d %s, %d passed, %d failed\n",
		len(r.Nodes), len(r.Expected), checkPlural(len(r.Expected), "node", "nodes"), failedNodes,
		total.Checks, checkPlural(total.Checks, "check", "checks"), total.Passed, total.Failed)
	_, err := io.WriteString(w, b.String())
	return err
}

func checkPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
