package mxworld

// RootCAsPEM returns the world's Web PKI root (the one RootCAs holds) in PEM
// form, for programs under test that read their roots from a file, such as
// the smtpsecure command's --ca-file.
func (w *World) RootCAsPEM() []byte { return w.pki.web.PEM() }
