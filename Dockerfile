# The smudge demo node (example/), alone in an image built FROM scratch:
# nothing to pull, nothing in it but the binary.
#
#   make image    builds bin/smudge (static: CGO_ENABLED=0) and then this
#                 image, tagged smudge:latest. The build only copies the
#                 binary; Go does not run inside Docker.
#
# In a container the node listens on every interface; its identity (the
# address it advertises) is the container's first non-loopback address, and
# it finds the other nodes of its network by multicast (see README, Docker).
# Every SMUDGE_* variable and flag of the binary works as usual, for example
#   docker run --rm -e SMUDGE_CLUSTER_NAME=blue smudge:latest -hbf 500
FROM scratch
COPY bin/smudge /smudge
ENV SMUDGE_LISTEN_IP=0.0.0.0
# 9999: the protocol (SMUDGE_LISTEN_PORT), UDP, and its streams (Send,
# Publish, checks), TCP on the same port; 9998: multicast discovery
# (SMUDGE_MULTICAST_PORT); 8080: the liveness API and page, with -id.
EXPOSE 9999/udp 9999/tcp 9998/udp 8080/tcp
# nobody: binding ports above 1023 and joining multicast groups need no
# privilege.
USER 65534:65534
ENTRYPOINT ["/smudge"]
