package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newBackupsCmd() *cobra.Command {
	var gw gatewayOptions
	var restore string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "backups NAME [--restore BACKUP]",
		Short: "List a function's backups, or restore one",
		Long: `Lists a function's backups (checkpoints taken while it runs, every
com.openfaas.criu.backup-interval), newest first, or restores one.`,
		Example: `  faas-criu backups sensor
  faas-criu backups sensor --json
  faas-criu backups sensor --restore sensor-0-20261202T101500`,
		Args: exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, out := args[0], cmd.OutOrStdout()
			c, err := gw.client("")
			if err != nil {
				return err
			}
			ctx := context.Background()
			if restore != "" {
				if err := c.RestoreBackup(ctx, name, gw.namespace, restore); err != nil {
					return err
				}
				fmt.Fprintf(out, "%s restored from %s\n", name, restore)
				return nil
			}
			list, err := c.Backups(ctx, name, gw.namespace)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if list == nil {
					return enc.Encode([]any{})
				}
				return enc.Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintf(out, "%s has no backups (set com.openfaas.criu.backup-interval, or --backup-interval)\n", name)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "BACKUP\tREPLICA\tTAKEN\tAGE\tSIZE")
			for _, b := range list {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", b.Name, b.Replica, b.TakenAt.Local().Format(time.RFC3339), time.Since(b.TakenAt).Round(time.Second), humanBytes(float64(b.Bytes)))
			}
			return tw.Flush()
		},
	}
	gw.addFlags(cmd.Flags(), "the function's namespace")
	cmd.Flags().StringVar(&restore, "restore", "", "bring the function back to this backup (a name from the list)")
	boolVar(cmd.Flags(), &asJSON, "json", false, "print the list as JSON")
	return cmd
}
