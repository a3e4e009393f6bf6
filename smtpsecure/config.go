package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// maxConfigFile bounds the size of a configuration file.
const maxConfigFile = 1 << 20

// configCandidates are the files send reads when -C is not given, in
// order: msmtp 1.8's $XDG_CONFIG_HOME/msmtp/config, then ~/.msmtprc, then
// the system file.
func (c *cli) configCandidates() []string {
	var out []string
	if x := c.getenv("XDG_CONFIG_HOME"); x != "" {
		out = append(out, filepath.Join(x, "msmtp", "config"))
	} else if h := c.getenv("HOME"); h != "" {
		out = append(out, filepath.Join(h, ".config", "msmtp", "config"))
	}
	if h := c.getenv("HOME"); h != "" {
		out = append(out, filepath.Join(h, ".msmtprc"))
	}
	return append(out, "/etc/msmtprc")
}

// loadConfig reads the configuration file named by -C, or the first of
// configCandidates that exists. It returns nil and no error when none
// exists and none was named.
func (c *cli) loadConfig(named string) (*msmtprc, error) {
	files := c.configCandidates()
	if named != "" {
		files = []string{expandTilde(named)}
	}
	for _, f := range files {
		data, err := readConfigFile(f)
		if errors.Is(err, fs.ErrNotExist) && named == "" {
			continue
		}
		if err != nil {
			return nil, configError("reading the configuration: %v", err)
		}
		return parseMsmtprc(bytes.NewReader(data), f)
	}
	return nil, nil
}

func readConfigFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	if fi.Size() > maxConfigFile {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("larger than 1 MiB")}
	}
	return os.ReadFile(name)
}

// checkPasswordFilePermissions refuses a configuration file that holds a
// password and that other users can read, as msmtp does.
func checkPasswordFilePermissions(name string) error {
	fi, err := os.Stat(name)
	if err != nil {
		return configError("checking the permissions of %s: %v", name, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return configError("%s holds a password and other users can read it (mode %04o): run chmod 600 %s, or move the password out with passwordeval", name, fi.Mode().Perm(), name)
	}
	return nil
}
