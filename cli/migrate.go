package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	gateway "github.com/faas-criu/faas-criu/client"
)

// runMigrate is `faas-criu migrate NAME --to URL`.
func RunMigrate(args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	to := fs.String("to", "", "the faas-criu to move the function to (its URL)")
	gw, ns := gatewayFlags(fs)
	keep := fs.Bool("keep", false, "leave a hibernated copy here instead of removing it")
	replace := fs.Bool("replace", false, "overwrite a function of the same name at the target")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: faas-criu migrate NAME --to URL [--keep] [--replace] [--gateway URL]\n\n"+
			"Moves a function with its memory state to another faas-criu: it is checkpointed here, its\n"+
			"definition, checkpoint and (when the target lacks it) image are streamed, compressed, and\n"+
			"the target restores it. On failure it keeps running here, with its state.\n\n"+
			"Credentials for both ends come from faas-cli login's config ($OPENFAAS_CONFIG or ~/.openfaas).\n\n")
		fs.PrintDefaults()
	}
	name, rest := splitName(args)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	if name == "" || *to == "" {
		fs.Usage()
		return errors.New("migrate: a function name and --to are required")
	}
	src, err := gatewayClient(*gw)
	if err != nil {
		return err
	}
	dst, err := clientFor(strings.TrimRight(*to, "/"))
	if err != nil {
		return err
	}
	req := gateway.MigrateRequest{FunctionName: name, Namespace: *ns, To: dst.URL, Keep: *keep, Replace: *replace}
	if c := dst.Credentials; c != nil {
		req.ToUser, req.ToPassword, req.ToToken = c.User, c.Password, c.Token
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	fmt.Printf("migrating %s from %s to %s\n", name, src.URL, dst.URL)
	err = src.Migrate(ctx, req, printProgress)
	if err != nil {
		var me *gateway.MigrationError
		if errors.As(err, &me) && me.Restored {
			fmt.Printf("%s is running at %s again, with its state\n", name, src.URL)
		}
		return err
	}
	where := "removed from " + src.URL
	if *keep {
		where = "a hibernated copy stays at " + src.URL
	}
	fmt.Printf("migrated %s to %s in %s (%s)\n", name, dst.URL, time.Since(start).Round(time.Millisecond), where)
	return nil
}

// printProgress prints one progress line: a step starting, bytes going by,
// or a step done.
func printProgress(p gateway.Progress) {
	switch {
	case p.Done && p.Bytes > 0:
		fmt.Printf("  %-10s done: %s sent at %s/s\n", p.Step, humanBytes(float64(p.Bytes)), humanBytes(p.Rate))
	case p.Done:
		fmt.Printf("  %-10s done%s\n", p.Step, note(p.Note))
	case p.Bytes > 0:
		fmt.Printf("  %-10s %s sent, %s/s\n", p.Step, humanBytes(float64(p.Bytes)), humanBytes(p.Rate))
	default:
		fmt.Printf("  %-10s ...\n", p.Step)
	}
}

func note(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// splitName takes a leading positional NAME off the arguments, so that
// flags may follow it (flag stops at the first non-flag).
func splitName(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}
