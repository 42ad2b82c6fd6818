# The provider's own image. `make image` builds the static binary on the
# host first (no registry or Go image needed), then this copies it in.
#
# Run it with the engine's socket, the provider's state directory (at the
# same path as on the host: secrets are bind-mounted into functions from
# there, and setup's CRIU verdict and CRIU's work directory are in it), the
# engine's data root (checkpoints live there), runc's CRIU configuration,
# the cgroup tree, and the host's /tmp (containerd leaves copies of restored
# checkpoints there, which the provider removes), on the host network (to
# reach the functions' bridge):
#
#   docker run -d --name faas-criu --network host \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /var/lib/faas-criu:/var/lib/faas-criu \
#     -v /var/lib/docker:/var/lib/docker \
#     -v /etc/criu:/etc/criu:ro -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
#     -v /tmp:/host-tmp \
#     faas-criu:latest serve --containerd-tmp /host-tmp
FROM scratch
COPY bin/faas-criu /faas-criu
ENTRYPOINT ["/faas-criu"]
CMD ["serve"]
