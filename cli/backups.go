package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

// runBackups is `faas-criu backups NAME [--restore BACKUP]`.
func RunBackups(args []string) error {
	fs := flag.NewFlagSet("backups", flag.ContinueOnError)
	gw, ns := gatewayFlags(fs)
	restore := fs.String("restore", "", "bring the function back to this backup (a name from the list)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: faas-criu backups NAME [--restore BACKUP] [--gateway URL]\n\n"+
			"Lists a function's backups (checkpoints taken while it runs, every\n"+
			"com.openfaas.criu.backup-interval), newest first, or restores one.\n\n")
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
	if name == "" {
		fs.Usage()
		return errors.New("backups: a function name is required")
	}
	c, err := gatewayClient(*gw)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if *restore != "" {
		if err := c.RestoreBackup(ctx, name, *ns, *restore); err != nil {
			return err
		}
		fmt.Printf("%s restored from %s\n", name, *restore)
		return nil
	}
	list, err := c.Backups(ctx, name, *ns)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Printf("%s has no backups (set com.openfaas.criu.backup-interval, or --backup-interval)\n", name)
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKUP\tREPLICA\tTAKEN\tAGE\tSIZE")
	for _, b := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", b.Name, b.Replica, b.TakenAt.Local().Format(time.RFC3339), time.Since(b.TakenAt).Round(time.Second), humanBytes(float64(b.Bytes)))
	}
	return tw.Flush()
}
