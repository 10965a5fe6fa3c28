/* nodelay_preload.c: an LD_PRELOAD shim that turns on TCP_NODELAY for every socket a
 * server accepts. Used only by benches/run-all.sh for the "ours + TCP_NODELAY" rows, to
 * measure what disabling Nagle's algorithm in demo-web (actix-web's
 * HttpServer::tcp_nodelay(true)) and transport-tcp (TcpStream::set_nodelay) would gain,
 * without changing those crates. Build: cc -shared -fPIC -O2 -o nodelay.so nodelay_preload.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd) {
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on non-TCP */
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = dlsym(RTLD_NEXT, "accept");
    int s = real(fd, addr, len);
    nodelay(s);
    return s;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = dlsym(RTLD_NEXT, "accept4");
    int s = real(fd, addr, len, flags);
    nodelay(s);
    return s;
}
