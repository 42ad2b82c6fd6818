package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/faas-criu/faas-criu/build"
	"github.com/faas-criu/faas-criu/stack"
)

// buildOptions are build's flags (up has them too).
type buildOptions struct {
	stack       stackOptions
	templateDir string
	buildArgs   []string
	tag         string
	parallel    int
	pull        bool
	noCache     bool
	verbose     bool
	shrinkwrap  bool
}

func (o *buildOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.templateDir, "template-dir", "", "directory of language templates (DIR/<lang>), instead of ./template and the repository's templates/template")
	fs.StringArrayVarP(&o.buildArgs, "build-arg", "b", nil, "build argument KEY=VALUE for every function, over its build_args (repeatable)")
	fs.StringVar(&o.tag, "tag", "latest", "image tag format: latest, sha, branch or describe (from git, as faas-cli)")
	fs.IntVar(&o.parallel, "parallel", 1, "how many functions to build at once")
	boolVar(fs, &o.pull, "pull", false, "let Docker pull base images instead of using local stand-ins")
	boolVar(fs, &o.noCache, "no-cache", false, "do not use Docker's build cache")
	boolVar(fs, &o.verbose, "verbose", false, "stream the build output")
	boolVar(fs, &o.shrinkwrap, "shrinkwrap", false, "only write each function's build context to ./build/<fn>, for a build elsewhere")
}

// options checks the flags and turns them into the builder's options for
// the selected functions, whose images get the --tag format.
func (o *buildOptions) options(s *stack.Stack, fns []*stack.Function, out io.Writer) (build.Options, error) {
	args, err := keyValues("build-arg", o.buildArgs)
	if err != nil {
		return build.Options{}, err
	}
	if o.parallel < 1 {
		return build.Options{}, usageError{fmt.Errorf("--parallel %d: want 1 or more", o.parallel)}
	}
	if err := tagImages(fns, o.tag, s.Dir); err != nil {
		return build.Options{}, err
	}
	bo := build.Options{
		Stack: s, Functions: fns, TemplateDir: o.templateDir, BuildArgs: args,
		Pull: o.pull, NoCache: o.noCache, Verbose: o.verbose, Parallel: o.parallel,
		Shrinkwrap: o.shrinkwrap, Out: out,
	}
	if !o.verbose {
		if isTerminal(out) {
			bo.Progress = &spinner{w: out}
		} else {
			bo.Progress = &phaseLines{w: out}
		}
	}
	return bo, nil
}

// tagImages applies a --tag format to the functions' images.
func tagImages(fns []*stack.Function, format, dir string) error {
	for _, fn := range fns {
		img, err := build.Tag(fn.Image, format, dir)
		if err != nil {
			return err
		}
		fn.Image = img
	}
	return nil
}

func newBuildCmd(o *buildOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build [-f stack.yml] [--filter NAME]",
		Short: "Build the stack's function images offline",
		Long: `Builds each function's image from its language template through the local
Docker engine. Missing golang/python base images are replaced by local ones
faas-criu makes, unless --pull. Every function is checked before the first
build. A .dockerignore in the build context is applied as docker build does.`,
		Example: `  faas-criu build
  faas-criu build -f stack.yml --filter 'sensor*' --parallel 2
  faas-criu build -b GO_VERSION=1.24 --tag sha
  faas-criu build --shrinkwrap     # write ./build/<fn> only`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, fns, err := o.stack.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			bo, err := o.options(s, fns, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return build.Run(ctx, bo)
		},
	}
	o.stack.addFlags(cmd.Flags())
	o.addFlags(cmd.Flags())
	return cmd
}
