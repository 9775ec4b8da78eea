// policy-pull copies an image out of a registry the way `podman pull` does: through
// containers/image's copy.Image under a policy.json, with registries.d configuration, so
// sigstoreSigned requirements are enforced by the upstream policy engine. Debian's podman
// and skopeo are built with sigstore verification disabled; this is the same engine
// without that change.
//
// Usage: policy-pull POLICY.json REGISTRIES.D USER:PASSWORD docker://IMAGE oci:DIR:NAME
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: policy-pull POLICY.json REGISTRIES.D USER:PASSWORD docker://IMAGE oci:DIR:NAME")
		os.Exit(2)
	}
	if err := pull(os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func pull(policyPath, registriesDir, creds, from, to string) error {
	policy, err := signature.NewPolicyFromFile(policyPath)
	if err != nil {
		return fmt.Errorf("reading the policy: %w", err)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return err
	}
	defer pc.Destroy()
	src, err := alltransports.ParseImageName(from)
	if err != nil {
		return err
	}
	dst, err := alltransports.ParseImageName(to)
	if err != nil {
		return err
	}
	user, password, _ := strings.Cut(creds, ":")
	sys := &types.SystemContext{
		RegistriesDirPath:           registriesDir,
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue,
		DockerAuthConfig:            &types.DockerAuthConfig{Username: user, Password: password},
	}
	_, err = copy.Image(context.Background(), pc, dst, src, &copy.Options{
		SourceCtx:      sys,
		DestinationCtx: &types.SystemContext{},
		// The policy is checked on the source; an OCI layout cannot store signatures.
		RemoveSignatures: true,
	})
	return err
}
