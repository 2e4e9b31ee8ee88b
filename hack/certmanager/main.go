// Command certmanager runs the parts of cert-manager that the chart's
// `certificates.mode=certManager` needs, as host processes beside the local node:
//
//	certmanager controller --kubeconfig FILE   Issuers (selfSigned, ca) and Certificates
//	certmanager cainjector --kubeconfig FILE   cert-manager.io/inject-ca-from on webhook configurations
//
// Why a main of our own: cert-manager's own commands (cmd/controller, cmd/cainjector) are
// separate Go modules that cannot be go-installed (their go.mod carries replace directives
// and their module paths do not match their tags), while the root module, pinned in go.mod
// here, holds every controller as a public package. This file only wires those packages, as
// cert-manager's commands do, with their defaults; there is no leader election (one process of
// each), no metrics and no webhook (the CRDs' OpenAPI schemas still validate).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	command := os.Args[1]
	flags := flag.NewFlagSet(command, flag.ExitOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	_ = flags.Parse(os.Args[2:])
	if *kubeconfig == "" {
		usage()
	}

	logf.InitLogs()
	defer logf.FlushLogs()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, command)

	var err error
	switch command {
	case "controller":
		err = runController(ctx, *kubeconfig)
	case "cainjector":
		err = runCAInjector(ctx, *kubeconfig)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "certmanager %s: %v\n", command, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: certmanager controller|cainjector --kubeconfig FILE")
	os.Exit(2)
}

// ready is the line a caller waits for: every informer the process needs has synced.
func ready(command string) {
	fmt.Fprintf(os.Stderr, "certmanager %s: ready\n", command)
}
