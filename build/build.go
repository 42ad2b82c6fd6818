package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/faas-criu/faas-criu/stack"
)

// Options is one run of the builder.
type Options struct {
	// Functions are the stack's functions to build, in order (see
	// stack.Stack.Select).
	Functions []*stack.Function
	Stack     *stack.Stack
	// TemplateDir is a directory of language templates (DIR/<lang>),
	// instead of ./template and the repository's templates/template.
	TemplateDir string
	// BuildArgs are added to every function's build_args, overriding them.
	BuildArgs map[string]string
	Pull      bool // let Docker pull base images instead of local stand-ins
	NoCache   bool // do not use Docker's build cache
	Verbose   bool // stream the build output to Out
	// Parallel is how many functions are built at once (at least 1).
	Parallel int
	// Shrinkwrap writes each function's build context to ShrinkwrapDir/<fn>
	// instead of building it.
	Shrinkwrap    bool
	ShrinkwrapDir string
	// Out receives one line per function and the verbose output
	// (nil: os.Stdout).
	Out io.Writer
	// Progress reports the long steps (making base images); nil reports
	// nothing.
	Progress Progress
}

// Progress is told about long steps: Start when one begins, Phase when it
// moves on (a line of the tool's output, such as debootstrap's "I:" lines),
// Done when it ends.
type Progress interface {
	Start(what string)
	Phase(text string)
	Done(err error)
}

// StackFile is the stack file to read: the one given, else stack.yaml,
// else stack.yml, in faas-cli's order (faas-cli now writes stack.yaml).
// With neither, stack.yaml, which the error then names.
func StackFile(given string) string {
	if given != "" {
		return given
	}
	for _, name := range []string{"stack.yaml", "stack.yml"} {
		if _, err := os.Stat(name); err == nil {
			return name
		}
	}
	return "stack.yaml"
}

// buildPlan is one function's build, checked before any is run.
type buildPlan struct {
	fn         *stack.Function
	handlerDir string
	tmpl       *foundTemplate // nil for lang: dockerfile
	args       map[string]string
	bases      *basePlan
	// root and copy: the stack's directory and its configuration.copy.
	root string
	copy []string
}

// Run builds the functions: every one is checked first (template, handler,
// base images), so that a mistake fails the run before anything is built;
// then missing local base images are made, and the images are built,
// o.Parallel at a time.
func Run(ctx context.Context, o Options) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	o.Parallel = max(o.Parallel, 1)
	var cli client.APIClient
	if !o.Shrinkwrap {
		c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return fmt.Errorf("docker: %w", err)
		}
		defer c.Close()
		cli = c
	}
	places := templatePlaces(o.Stack.Dir, o.TemplateDir)
	var plans []*buildPlan
	for _, fn := range o.Functions {
		if fn.SkipBuild {
			fmt.Fprintf(o.Out, "skipped %s: skip_build is set\n", fn.Name)
			continue
		}
		// A shrinkwrapped context is built elsewhere, where its base images
		// are: nothing is asked of the local engine.
		p, err := planBuild(ctx, cli, o.Stack, fn, places, o.Pull || o.Shrinkwrap, o.BuildArgs)
		if err != nil {
			return fmt.Errorf("build %s: %w", fn.Name, err)
		}
		plans = append(plans, p)
	}
	if o.Shrinkwrap {
		return shrinkwrapAll(plans, o)
	}
	if err := makeBases(ctx, cli, plans, o); err != nil {
		return err
	}
	return buildAll(ctx, cli, plans, o)
}

// makeBases makes each missing local base image once, before any build.
func makeBases(ctx context.Context, cli client.APIClient, plans []*buildPlan, o Options) error {
	var out io.Writer
	if o.Verbose {
		out = o.Out
	}
	made := map[string]bool{}
	for _, p := range plans {
		for _, b := range p.bases.bases {
			if made[b.Ref] {
				continue
			}
			if err := b.ensure(ctx, cli, out, o.Out, o.Progress); err != nil {
				return fmt.Errorf("build %s: %w", p.fn.Name, err)
			}
			made[b.Ref] = true
		}
	}
	return nil
}

// buildAll builds the images, o.Parallel at a time; the first failure
// stops the builds not yet started.
func buildAll(ctx context.Context, cli client.APIClient, plans []*buildPlan, o Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, o.Parallel)
	for _, p := range plans {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			start := time.Now()
			err := buildImage(ctx, cli, p, o)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("build %s: %w", p.fn.Name, err))
				cancel()
				return
			}
			fmt.Fprintf(o.Out, "built %s: %s in %s\n", p.fn.Name, p.fn.Image, seconds(time.Since(start)))
		}()
	}
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// planBuild finds a function's template and handler and checks its base
// images.
func planBuild(ctx context.Context, cli client.APIClient, s *stack.Stack, fn *stack.Function, places []string, pull bool, extraArgs map[string]string) (*buildPlan, error) {
	if fn.Lang == "" {
		return nil, fmt.Errorf("%s: no lang to build from: set lang and handler, or skip_build: true for a ready-made image", s.Path)
	}
	if fn.Handler == "" {
		return nil, fmt.Errorf("%s: no handler directory: set handler", s.Path)
	}
	p := &buildPlan{fn: fn, handlerDir: fn.Handler, args: maps.Clone(fn.BuildArgs), root: s.Dir, copy: s.Configuration.Copy}
	if !filepath.IsAbs(p.handlerDir) {
		p.handlerDir = filepath.Join(s.Dir, p.handlerDir)
	}
	if !isDirectory(p.handlerDir) {
		return nil, fmt.Errorf("handler %s is not a directory", p.handlerDir)
	}
	if p.args == nil {
		p.args = map[string]string{}
	}
	maps.Copy(p.args, extraArgs)
	dockerfile := filepath.Join(p.handlerDir, "Dockerfile")
	if fn.Lang != "dockerfile" {
		t, err := findTemplate(fn.Lang, places)
		if err != nil {
			return nil, err
		}
		p.tmpl = t
		if err := checkDependencies(t, p.handlerDir); err != nil {
			return nil, err
		}
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
func buildImage(ctx context.Context, cli client.APIClient, p *buildPlan, o Options) error {
	tmplDir, folder := "", ""
	if p.tmpl != nil {
		tmplDir, folder = p.tmpl.Dir, p.tmpl.Spec.HandlerFolder
	}
	files, err := buildContextCopy(tmplDir, p.handlerDir, folder, p.root, p.copy)
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
		PullParent:  o.Pull,
		NoCache:     o.NoCache,
		Version:     build.BuilderV1,
		NetworkMode: buildNetwork(p.args, o.Pull),
	})
	if err != nil {
		return fmt.Errorf("docker build: %w", err)
	}
	defer resp.Body.Close()
	var out io.Writer
	if o.Verbose {
		out = o.Out
	}
	tail := &lineTail{max: 20}
	if err := readMessages(resp.Body, out, tail); err != nil {
		if !o.Verbose {
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
