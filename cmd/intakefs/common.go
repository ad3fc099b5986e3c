package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/intakefs/intakefs/engine"
)

func (g *globalFlags) logger() (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(g.logLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "info", "":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
}

func (g *globalFlags) rootParams() (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range g.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// open loads the catalog the way every command does.
func (g *globalFlags) open(catalog string) (*engine.FS, *slog.Logger, error) {
	log, err := g.logger()
	if err != nil {
		return nil, nil, err
	}
	params, err := g.rootParams()
	if err != nil {
		return nil, nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, nil, err
	}
	tree, err := engine.New(catalog, engine.Options{Cwd: cwd, RootParams: params, AllowShell: g.allowShell, Log: log})
	if err != nil {
		return nil, nil, err
	}
	return tree, log, nil
}
