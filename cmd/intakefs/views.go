package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/intakefs/intakefs/engine"
)

func newLsCmd(g *globalFlags) *cobra.Command {
	var long bool
	c := &cobra.Command{
		Use:   "ls CATALOG [PATH]",
		Short: "List a catalog directory as the mount would show it",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tree, _, err := g.open(args[0])
			if err != nil {
				return err
			}
			defer tree.Close()
			p := ""
			if len(args) == 2 {
				p = args[1]
			}
			ctx := context.Background()
			n, err := tree.Walk(ctx, p)
			if err != nil {
				return err
			}
			d, ok := n.(engine.Dir)
			if !ok {
				return printEntry(os.Stdout, ctx, n, long)
			}
			kids, err := d.ReadDir(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			for _, k := range kids {
				if err := printEntry(w, ctx, k, long); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&long, "long", "l", false, "show sizes")
	return c
}

func printEntry(w interface{ Write([]byte) (int, error) }, ctx context.Context, n engine.Node, long bool) error {
	name := n.Name()
	if n.IsDir() {
		name += "/"
	}
	if !long {
		_, err := fmt.Fprintln(w, name)
		return err
	}
	size := "-"
	if f, ok := n.(engine.File); ok {
		st, err := f.Stat(ctx)
		if err != nil {
			return err
		}
		size = fmt.Sprint(st.Size)
	}
	_, err := fmt.Fprintf(w, "%s\t %s\n", size, name) // the name after the last tab: not right-aligned
	return err
}

func newDescribeCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe CATALOG [PATH]",
		Short: "Print a source's (or catalog's) describe.yaml, or why its parameters are invalid",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tree, _, err := g.open(args[0])
			if err != nil {
				return err
			}
			defer tree.Close()
			p := ""
			if len(args) == 2 {
				p = args[1]
			}
			out, err := tree.Describe(context.Background(), p)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(out)
			return err
		},
	}
}

func newCatCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cat CATALOG PATH",
		Short: "Write a file of the catalog tree to standard output",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tree, _, err := g.open(args[0])
			if err != nil {
				return err
			}
			defer tree.Close()
			ctx := context.Background()
			n, err := tree.Walk(ctx, args[1])
			if err != nil {
				return err
			}
			f, ok := n.(engine.File)
			if !ok {
				return fmt.Errorf("%s is a directory", args[1])
			}
			bw := bufio.NewWriterSize(os.Stdout, 1<<20)
			_, err = engine.ReadAll(ctx, f, bw)
			// the bytes before a failure too (damaged data gives its good
			// bytes, then the error), as gzip -dc and cat do
			if ferr := bw.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
}
