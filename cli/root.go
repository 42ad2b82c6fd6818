// Package cli is faas-criu's command line: one file per command, each
// turning its flags into options, calling the library (build, client,
// provider) and printing the outcome. Flag names and short forms follow
// faas-cli's where they mean the same.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/faas-criu/faas-criu/build"
	"github.com/faas-criu/faas-criu/client"
	"github.com/faas-criu/faas-criu/internal/config"
	"github.com/faas-criu/faas-criu/stack"
)

// Execute runs the command line args (without the program name) and
// returns the exit status: 0, 1 when the command failed, 2 for a usage
// mistake.
func Execute(args []string) int {
	root := NewRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "faas-criu: %v\n", err)
	return exitStatus(err)
}

// exitStatus is 2 for a mistake in the command line (cobra reports an
// unknown command as plain text), else 1.
func exitStatus(err error) int {
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ") {
		return 2
	}
	return 1
}

// usageError marks a mistake in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// NewRoot returns the faas-criu command with every subcommand, writing to
// stdout and stderr.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	lo := &logOptions{}
	root := &cobra.Command{
		Use:   "faas-criu",
		Short: "An OpenFaaS provider for Docker that hibernates idle functions with CRIU",
		Long: `faas-criu runs OpenFaaS functions on plain Docker and hibernates idle ones
with CRIU. "faas-criu serve" is the provider; the other commands build,
deploy and move functions, the way faas-cli does.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return setupLogging(*lo, stderr)
		},
		// No command: the help, and the exit status of a usage mistake.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Help()
			return usageError{errors.New("a command is required")}
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	env := &config.Env{}
	pf.StringVar(&lo.format, "log-format", env.String("log_format", "text"), "log format: text or json (env log_format)")
	pf.StringVar(&lo.level, "log-level", env.String("log_level", "info"), "least severe log level shown: debug, info, warn or error (env log_level)")
	root.AddCommand(newServeCmd(), newBuildCmd(&buildOptions{}), newDeployCmd(&deployOptions{}),
		newUpCmd(&upOptions{}), newMigrateCmd(&migrateOptions{}), newBackupsCmd(), newVersionCmd())
	return root
}

// stackOptions select a stack file's functions, as faas-cli's -f, --filter
// and --regex do.
type stackOptions struct {
	file, filter, regex string
}

func (o *stackOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.file, "yaml", "f", "", "stack file (default stack.yaml, else stack.yml, as faas-cli)")
	fs.StringVar(&o.filter, "filter", "", "only the functions whose names match this glob")
	fs.StringVar(&o.regex, "regex", "", "only the functions whose names match this regular expression")
}

// load reads the stack file and selects its functions. What the stack holds
// that faas-criu does not use is named on warn, one WARNING line each.
func (o *stackOptions) load(warn io.Writer) (*stack.Stack, []*stack.Function, error) {
	var re *regexp.Regexp
	if o.regex != "" {
		var err error
		if re, err = regexp.Compile(o.regex); err != nil {
			return nil, nil, usageError{fmt.Errorf("--regex %q: %w", o.regex, err)}
		}
	}
	s, err := stack.Load(build.StackFile(o.file), nil)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(warn, "WARNING: %s\n", w)
	}
	fns, err := s.Select(o.filter)
	if err != nil || re == nil {
		return s, fns, err
	}
	var out []*stack.Function
	for _, fn := range fns {
		if re.MatchString(fn.Name) {
			out = append(out, fn)
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("%s: no function matches --regex %q", s.Path, o.regex)
	}
	return s, out, nil
}

// gatewayOptions say which faas-criu a command talks to.
type gatewayOptions struct {
	gateway, namespace string
	tlsNoVerify        bool
}

// addFlags adds -g/--gateway, --tls-no-verify, and -n/--namespace unless
// nsUsage is empty.
func (o *gatewayOptions) addFlags(fs *pflag.FlagSet, nsUsage string) {
	fs.StringVarP(&o.gateway, "gateway", "g", "", "gateway URL (when not given: the stack's provider.gateway, then $OPENFAAS_URL, then "+client.DefaultURL+", as faas-cli; http:// when no scheme is given)")
	if nsUsage != "" {
		fs.StringVarP(&o.namespace, "namespace", "n", "", nsUsage)
	}
	boolVar(fs, &o.tlsNoVerify, "tls-no-verify", false, "do not verify the gateway's TLS certificate")
}

// client returns a client for the gateway the flags, the environment or
// the stack (stackGateway, may be empty) name, with faas-cli's credentials.
func (o *gatewayOptions) client(stackGateway string) (*client.Client, error) {
	c, err := client.ForGateway(client.URL(o.gateway, stackGateway, nil))
	if err != nil {
		return nil, err
	}
	if o.tlsNoVerify {
		c.SkipTLSVerify()
	}
	return c, nil
}

// keyValues parses KEY=VALUE flags into a map; flag names the flag.
func keyValues(flag string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageError{fmt.Errorf("--%s %q: want KEY=VALUE", flag, kv)}
		}
		m[strings.TrimSpace(k)] = v
	}
	return m, nil
}

// exactlyOneName accepts one positional argument, the function's name.
func exactlyOneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("%s: want one function name, got %d arguments", cmd.Name(), len(args))}
	}
	return nil
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q", cmd.Name(), args[0])}
	}
	return nil
}

// boolFlag is a boolean flag read with config.ParseBool, as serve's
// settings are: --pull=yes works and --pull=maybe is refused naming the
// flag (pflag's own bool takes strconv.ParseBool's words only).
type boolFlag struct{ config.Bool }

func (boolFlag) Type() string { return "bool" }

// boolVar defines a boolean flag read with config.ParseBool; "--name"
// alone is true.
func boolVar(fs *pflag.FlagSet, p *bool, name string, value bool, usage string) {
	*p = value
	fs.VarPF(boolFlag{config.Bool{P: p}}, name, "", usage).NoOptDefVal = "true"
}
