/* Servers for benches/net.rs, on 127.0.0.1:PORT:
 *   sink PORT        accept one connection, read until EOF in 256 KiB reads, print the bytes
 *   http PORT N      answer N HTTP requests, one connection each, with a small static page
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (void *)&a, sizeof a) < 0 || listen(l, 128) < 0) {
        perror("listen");
        exit(1);
    }
    return l;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    int l = listener(atoi(argv[2]));
    if (!strcmp(argv[1], "sink")) {
        static char buf[256 << 10];
        int c = accept(l, 0, 0);
        long n, total = 0;
        while ((n = read(c, buf, sizeof buf)) > 0)
            total += n;
        printf("%ld\n", total);
        return 0;
    }
    static const char page[] = "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 46\r\n\r\n"
                               "<html><body>hello from a tiny server</body></html>";
    int n = argc > 3 ? atoi(argv[3]) : 1;
    char req[4096];
    for (int i = 0; i < n; i++) {
        int c = accept(l, 0, 0);
        if (c < 0)
            return 1;
        if (read(c, req, sizeof req) <= 0) {
            close(c);
            continue;
        }
        if (write(c, page, sizeof page - 1) < 0)
            return 1;
        close(c);
    }
    return 0;
}
