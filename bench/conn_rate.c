/* New TCP connections per second, for bench/firewall.py.
 *
 *   conn_rate server ADDR PORT
 *       accept, write one byte, close; forever (stopped by the bench, by PID)
 *   conn_rate client ADDR PORT SECONDS
 *       connect, read the byte, close (with an RST: SO_LINGER 0, so neither
 *       end keeps TIME_WAIT and conntrack's entry is short-lived), in a loop
 *       for SECONDS; prints "<connections> <seconds> <failures>"
 *
 * Each connection is a SYN through the firewall's set lookups (the first
 * packet of a flow), the rest of it conntrack's established path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int address(const char *ip, const char *port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)atoi(port));
    if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1) {
        fprintf(stderr, "conn_rate: not an IPv4 address: %s\n", ip);
        return -1;
    }
    return 0;
}

static int server(const struct sockaddr_in *sa) {
    int one = 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0
        || bind(s, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(s, 4096) < 0) {
        perror("conn_rate server");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            perror("accept");
            return 1;
        }
        if (write(c, "x", 1) != 1) {
            /* the client gave up: nothing to do but close */
        }
        close(c);
    }
}

static int client(const struct sockaddr_in *sa, double seconds) {
    struct linger rst = {1, 0};
    struct timeval limit = {1, 0}; /* a dropped SYN fails the connection after 1 s */
    long done = 0, failed = 0;
    double start = now(), end = start + seconds, t = start;
    char byte;
    while (t < end) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0) {
            perror("socket");
            return 1;
        }
        setsockopt(c, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
        if (connect(c, (const struct sockaddr *)sa, sizeof(*sa)) == 0 && read(c, &byte, 1) == 1)
            done++;
        else
            failed++;
        close(c);
        if ((done + failed) % 64 == 0)
            t = now();
    }
    t = now();
    printf("%ld %.6f %ld\n", done, t - start, failed);
    return 0;
}

int main(int argc, char **argv) {
    struct sockaddr_in sa;
    signal(SIGPIPE, SIG_IGN);
    if (argc == 4 && strcmp(argv[1], "server") == 0) {
        if (address(argv[2], argv[3], &sa) < 0)
            return 2;
        return server(&sa);
    }
    if (argc == 5 && strcmp(argv[1], "client") == 0) {
        if (address(argv[2], argv[3], &sa) < 0)
            return 2;
        return client(&sa, atof(argv[4]));
    }
    fprintf(stderr, "usage: conn_rate server ADDR PORT | conn_rate client ADDR PORT SECONDS\n");
    return 2;
}
