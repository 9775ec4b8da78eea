module kiln.invalid/tools/policy-pull

go 1.25

require go.podman.io/image/v5 v5.42.1
