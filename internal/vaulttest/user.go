package vaulttest

import (
	"io/fs"
	"os"
	"path/filepath"
)

// handOver prepares a server run as Options.User: its own link (or copy)
// of the vault binary, and its folder owned by the user.
func (s *Server) handOver() {
	s.t.Helper()
	own := filepath.Join(s.Dir, "vault")
	if err := os.Link(s.opts.VaultBin, own); err != nil {
		if err := CopyFile(s.opts.VaultBin, own, 0o755); err != nil {
			s.t.Fatalf("giving the server its own vault binary: %v", err)
		}
	}
	// Through an os.Root, so that nothing outside the folder is handed over.
	root, err := os.OpenRoot(s.Dir)
	if err == nil {
		defer func() { _ = root.Close() }()
		err = fs.WalkDir(root.FS(), ".", func(path string, _ fs.DirEntry, err error) error {
			if err != nil || path == filepath.Base(own) {
				return err
			}
			return root.Lchown(path, int(s.opts.User.Uid), int(s.opts.User.Gid))
		})
	}
	if err != nil {
		s.t.Fatalf("handing the server's folder to its user: %v", err)
	}
}

// chown gives a file the server writes before it starts to its user.
func (s *Server) chown(path string) {
	s.t.Helper()
	if s.opts.User == nil {
		return
	}
	if err := os.Chown(path, int(s.opts.User.Uid), int(s.opts.User.Gid)); err != nil {
		s.t.Fatalf("%v", err)
	}
}

// vaultBin is the binary the server runs.
func (s *Server) vaultBin() string {
	if s.opts.User != nil {
		return filepath.Join(s.Dir, "vault")
	}
	return s.opts.VaultBin
}
