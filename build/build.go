package build

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/faas-criu/faas-criu/stack"
)

type buildOptions struct {
	file        string
	filter      string
	templateDir string
	pull        bool
	noCache     bool
	verbose     bool
}

func parseBuild(args []string) (*buildOptions, error) {
	o := &buildOptions{}
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.StringVar(&o.file, "f", "", "stack file (default stack.yml, or stack.yaml)")
	fs.StringVar(&o.file, "yaml", "", "same as -f")
	fs.StringVar(&o.filter, "filter", "", "build only the functions matching this glob")
	fs.StringVar(&o.templateDir, "template-dir", "", "directory of language templates (DIR/<lang>), instead of ./template and the repository's templates/template")
	fs.BoolVar(&o.pull, "pull", false, "let Docker pull base images instead of using local stand-ins")
	fs.BoolVar(&o.noCache, "no-cache", false, "do not use Docker's build cache")
	fs.BoolVar(&o.verbose, "verbose", false, "stream the build output")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: faas-criu build -f stack.yml [--filter NAME] [--pull] [--verbose]\n\n"+
			"Builds each function's image from its language template through the local Docker engine.\n"+
			"Missing golang/python base images are replaced by local ones faas-criu makes, unless --pull.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("build: unexpected argument %q", fs.Arg(0))
	}
	o.file = StackFile(o.file)
	return o, nil
}

// stackFile is the stack file to read: the one given, else stack.yml, else
// stack.yaml if only that exists.
func StackFile(given string) string {
	if given != "" {
		return given
	}
	if _, err := os.Stat("stack.yml"); err != nil {
		if _, err := os.Stat("stack.yaml"); err == nil {
			return "stack.yaml"
		}
	}
	return "stack.yml"
}

// buildPlan is one function's build, checked before any is run.
type buildPlan struct {
	fn         *stack.Function
	handlerDir string
	tmpl       *template // nil for lang: dockerfile
	args       map[string]string
	bases      *basePlan
}

func RunBuild(args []string) error {
	o, err := parseBuild(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	s, err := stack.Load(o.file, nil)
	if err != nil {
		return err
	}
	fns, err := s.Select(o.filter)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	defer cli.Close()

	// Check every function first: a missing template or base image fails
	// the run before anything is built.
	places := templatePlaces(s.Dir, o.templateDir)
	var plans []*buildPlan
	for _, fn := range fns {
		if fn.SkipBuild {
			fmt.Printf("skipped %s: skip_build is set\n", fn.Name)
			continue
		}
		p, err := planBuild(ctx, cli, s, fn, places, o.pull)
		if err != nil {
			return fmt.Errorf("build %s: %w", fn.Name, err)
		}
		plans = append(plans, p)
	}

	var out io.Writer
	if o.verbose {
		out = os.Stdout
	}
	made := map[string]bool{}
	for _, p := range plans {
		for _, b := range p.bases.bases {
			if made[b.Ref] {
				continue
			}
			if err := b.ensure(ctx, cli, out); err != nil {
				return fmt.Errorf("build %s: %w", p.fn.Name, err)
			}
			made[b.Ref] = true
		}
		start := time.Now()
		if err := buildImage(ctx, cli, p, o); err != nil {
			return fmt.Errorf("build %s: %w", p.fn.Name, err)
		}
		fmt.Printf("built %s: %s in %s\n", p.fn.Name, p.fn.Image, seconds(time.Since(start)))
	}
	return nil
}

// planBuild finds a function's template and handler and checks its base
// images.
func planBuild(ctx context.Context, cli client.APIClient, s *stack.Stack, fn *stack.Function, places []string, pull bool) (*buildPlan, error) {
	if fn.Lang == "" {
		return nil, fmt.Errorf("%s: no lang to build from: set lang and handler, or skip_build: true for a ready-made image", s.Path)
	}
	if fn.Handler == "" {
		return nil, fmt.Errorf("%s: no handler directory: set handler", s.Path)
	}
	p := &buildPlan{fn: fn, handlerDir: fn.Handler, args: maps.Clone(fn.BuildArgs)}
	if !filepath.IsAbs(p.handlerDir) {
		p.handlerDir = filepath.Join(s.Dir, p.handlerDir)
	}
	if !isDir(p.handlerDir) {
		return nil, fmt.Errorf("handler %s is not a directory", p.handlerDir)
	}
	if p.args == nil {
		p.args = map[string]string{}
	}
	dockerfile := filepath.Join(p.handlerDir, "Dockerfile")
	if fn.Lang != "dockerfile" {
		t, err := findTemplate(fn.Lang, places)
		if err != nil {
			return nil, err
		}
		p.tmpl = t
		dockerfile = filepath.Join(t.Dir, "Dockerfile")
		pkgs, err := t.additionalPackages(fn.BuildOptions)
		if err != nil {
			return nil, err
		}
		if len(pkgs) > 0 {
			p.args["ADDITIONAL_PACKAGE"] = strings.TrimSpace(p.args["ADDITIONAL_PACKAGE"] + " " + strings.Join(pkgs, " "))
		}
	} else if len(fn.BuildOptions) > 0 {
		return nil, fmt.Errorf("build_options need a language template, and lang is dockerfile")
	}
	df, err := os.ReadFile(dockerfile)
	if err != nil {
		return nil, err
	}
	if p.bases, err = planBases(ctx, cli, df, p.args, pull); err != nil {
		return nil, err
	}
	maps.Copy(p.args, p.bases.args)
	return p, nil
}

// buildImage sends the build context to the engine and follows the build.
func buildImage(ctx context.Context, cli client.APIClient, p *buildPlan, o *buildOptions) error {
	tmplDir, folder := "", ""
	if p.tmpl != nil {
		tmplDir, folder = p.tmpl.Dir, p.tmpl.Spec.HandlerFolder
	}
	files, err := buildContext(tmplDir, p.handlerDir, folder)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, files)) }()
	defer pr.Close()

	buildArgs := map[string]*string{}
	for k, v := range p.args {
		buildArgs[k] = &v
	}
	resp, err := cli.ImageBuild(ctx, pr, build.ImageBuildOptions{
		Tags:        []string{p.fn.Image},
		Dockerfile:  "Dockerfile",
		BuildArgs:   buildArgs,
		Remove:      true,
		ForceRemove: true,
		PullParent:  o.pull,
		NoCache:     o.noCache,
		Version:     build.BuilderV1,
		NetworkMode: buildNetwork(p.args, o.pull),
	})
	if err != nil {
		return fmt.Errorf("docker build: %w", err)
	}
	defer resp.Body.Close()
	var out io.Writer
	if o.verbose {
		out = os.Stdout
	}
	tail := &lineTail{max: 20}
	if err := readMessages(resp.Body, out, tail); err != nil {
		if !o.verbose {
			return fmt.Errorf("%w%s", err, indentTail(tail.String(), tail.max))
		}
		return err
	}
	return nil
}

// buildNetwork is "none", so builds are hermetic and do not depend on the
// engine's default bridge, unless the build installs packages
// (ADDITIONAL_PACKAGE) or pulls, which need the network.
func buildNetwork(args map[string]string, pull bool) string {
	if pull || strings.TrimSpace(args["ADDITIONAL_PACKAGE"]) != "" {
		return ""
	}
	return "none"
}

// readMessages follows a Docker JSON message stream, writing its text to
// out (if not nil) and keeping the last lines in tail (if not nil). It
// returns the stream's error message as an error.
func readMessages(r io.Reader, out io.Writer, tail *lineTail) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading the engine's answer: %w", err)
		}
		if m.Error != nil {
			return errors.New(strings.TrimSpace(m.Error.Message))
		}
		text := m.Stream
		if text == "" && m.Status != "" {
			text = strings.TrimSpace(m.ID+" "+m.Status) + "\n"
		}
		if text == "" {
			continue
		}
		if out != nil {
			io.WriteString(out, text)
		}
		if tail != nil {
			tail.add(text)
		}
	}
}

// lineTail keeps the last max lines written to it.
type lineTail struct {
	max   int
	lines []string
}

// ansi matches terminal colour codes, which the engine puts around a
// step's stderr.
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func (t *lineTail) add(text string) {
	for _, l := range strings.Split(ansi.ReplaceAllString(text, ""), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		t.lines = append(t.lines, strings.TrimRight(l, "\r"))
		if len(t.lines) > t.max {
			t.lines = t.lines[1:]
		}
	}
}

func (t *lineTail) String() string { return strings.Join(t.lines, "\n") }
