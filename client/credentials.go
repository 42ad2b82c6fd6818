package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// ProviderCredentialsDir is where faas-criu serve keeps its basic-auth
// files unless $secret_mount_path says otherwise.
const ProviderCredentialsDir = "/var/lib/faas-criu/credentials"

// Credentials authenticate requests to the gateway.
type Credentials struct {
	User, Password string // basic auth
	Token          string // bearer token, when the config says auth: oauth2
	Source         string // the file they came from, for messages
}

func (c *Credentials) apply(r *http.Request) {
	switch {
	case c == nil:
	case c.Token != "":
		r.Header.Set("Authorization", "Bearer "+c.Token)
	default:
		r.SetBasicAuth(c.User, c.Password)
	}
}

// FindCredentials looks for credentials for gatewayURL:
//
//  1. in the config faas-cli login writes: config.yml in $OPENFAAS_CONFIG,
//     or else in ~/.openfaas, the entry whose gateway matches;
//  2. else in the provider's own files, basic-auth-user and
//     basic-auth-password, in $secret_mount_path or else
//     ProviderCredentialsDir. These are used only when $secret_mount_path
//     is set or the gateway is on a loopback address, so that the box's
//     admin password is never sent elsewhere, and skipped silently when
//     they cannot be read (they are readable only by root).
//
// It returns nil, nil when it finds none, and an error only for a config
// file that exists but cannot be read or parsed. lookupEnv nil means
// os.LookupEnv.
func FindCredentials(gatewayURL string, lookupEnv func(string) (string, bool)) (*Credentials, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	c, err := fromConfig(gatewayURL, configDir(lookupEnv))
	if c != nil || err != nil {
		return c, err
	}
	dir, explicit := lookupEnv("secret_mount_path")
	explicit = explicit && dir != ""
	if !explicit {
		dir = ProviderCredentialsDir
	}
	if !explicit && !isLoopback(gatewayURL) {
		return nil, nil
	}
	return fromProviderFiles(dir), nil
}

// configDir is faas-cli's configuration directory.
func configDir(lookupEnv func(string) (string, bool)) string {
	if d, ok := lookupEnv("OPENFAAS_CONFIG"); ok && d != "" {
		return d
	}
	home, ok := lookupEnv("HOME")
	if !ok || home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		home = h
	}
	return filepath.Join(home, ".openfaas")
}

// config is the part of faas-cli's config.yml read here.
type config struct {
	Auths []struct {
		Gateway string `yaml:"gateway"`
		Auth    string `yaml:"auth"`
		Token   string `yaml:"token"`
	} `yaml:"auths"`
}

func fromConfig(gatewayURL, dir string) (*Credentials, error) {
	if dir == "" {
		return nil, nil
	}
	path := filepath.Join(dir, "config.yml")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("faas-cli config: %w", err)
	}
	var cfg config
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("faas-cli config %s: %w", path, err)
	}
	want := strings.TrimRight(gatewayURL, "/")
	for _, a := range cfg.Auths {
		if strings.TrimRight(a.Gateway, "/") != want {
			continue
		}
		switch a.Auth {
		case "basic":
			raw, err := base64.StdEncoding.DecodeString(a.Token)
			if err != nil {
				return nil, fmt.Errorf("faas-cli config %s: gateway %s: token is not base64: %w", path, a.Gateway, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("faas-cli config %s: gateway %s: token is not user:password", path, a.Gateway)
			}
			return &Credentials{User: user, Password: pass, Source: path}, nil
		case "oauth2", "bearer":
			return &Credentials{Token: a.Token, Source: path}, nil
		default:
			return nil, fmt.Errorf("faas-cli config %s: gateway %s: auth %q is not supported (use faas-cli login)", path, a.Gateway, a.Auth)
		}
	}
	return nil, nil
}

func fromProviderFiles(dir string) *Credentials {
	user, err1 := os.ReadFile(filepath.Join(dir, "basic-auth-user"))
	pass, err2 := os.ReadFile(filepath.Join(dir, "basic-auth-password"))
	if err1 != nil || err2 != nil {
		return nil
	}
	return &Credentials{
		User:     strings.TrimSpace(string(user)),
		Password: strings.TrimSpace(string(pass)),
		Source:   dir,
	}
}

// isLoopback says whether the URL's host is this machine's loopback.
func isLoopback(gatewayURL string) bool {
	u, err := url.Parse(gatewayURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
