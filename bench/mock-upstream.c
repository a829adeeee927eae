/*
 * A minimal, fast OpenAI-compatible upstream for benchmarks: epoll, HTTP/1.1 keep-alive,
 * fixed answers. POST .../chat/completions answers a fixed completion, or a fixed SSE stream
 * when the body contains "stream":true. Anything else gets 404. Single-threaded on purpose:
 * it stays far from being the bottleneck while leaving the other core to the proxy under test.
 *
 *   cc -O2 -o mock-upstream mock-upstream.c && ./mock-upstream 9100
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
#define MAX_EVENTS 256

static const char *COMPLETION =
    "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"mock\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello from the mock upstream, "
    "a fixed answer of moderate length.\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":12,\"total_tokens\":24}}";

static char stream_body[8192];
static char completion_response[2048];
static char stream_response[10240];
static const char *NOT_FOUND = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

struct conn {
    int fd;
    size_t len;
    char buf[BUF];
};

static void build_responses(void) {
    snprintf(completion_response, sizeof completion_response,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(COMPLETION), COMPLETION);
    const char *words[] = {"Hello", " from", " the", " mock", " upstream", ",", " streamed", " in", " twelve", " small", " pieces", "."};
    size_t n = 0;
    n += snprintf(stream_body + n, sizeof stream_body - n,
                  "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"mock\","
                  "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    for (int i = 0; i < 12; i++)
        n += snprintf(stream_body + n, sizeof stream_body - n,
                      "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"mock\","
                      "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}\n\n", words[i]);
    n += snprintf(stream_body + n, sizeof stream_body - n,
                  "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"mock\","
                  "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                  "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"mock\","
                  "\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":12,\"total_tokens\":24}}\n\n"
                  "data: [DONE]\n\n");
    snprintf(stream_response, sizeof stream_response,
             "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nContent-Length: %zu\r\n\r\n%s", n,
             stream_body);
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { usleep(50); continue; }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Answers every complete request in the buffer; returns -1 to close. */
static int serve(struct conn *c) {
    for (;;) {
        c->buf[c->len] = 0;
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end) return c->len >= BUF - 1 ? -1 : 0;
        size_t head = (size_t)(end - c->buf) + 4;
        size_t body = 0;
        char *cl = strcasestr(c->buf, "\r\ncontent-length:");
        if (cl && cl < end) body = (size_t)strtoul(cl + 17, NULL, 10);
        if (head + body > BUF - 1) return -1;
        if (c->len < head + body) return 0;
        const char *resp = NOT_FOUND;
        if (strncmp(c->buf, "POST ", 5) == 0 && strstr(c->buf, "/chat/completions")) {
            char saved = c->buf[head + body];
            c->buf[head + body] = 0;
            int stream = strstr(c->buf + head, "\"stream\":true") != NULL || strstr(c->buf + head, "\"stream\": true") != NULL;
            c->buf[head + body] = saved;
            resp = stream ? stream_response : completion_response;
        } else if (strncmp(c->buf, "GET ", 4) == 0 && strstr(c->buf, "/models")) {
            resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n{\"object\":\"list\",\"data\":[]}";
        }
        if (write_all(c->fd, resp, strlen(resp)) < 0) return -1;
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9100;
    signal(SIGPIPE, SIG_IGN);
    build_responses();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event events[MAX_EVENTS];
    fprintf(stderr, "mock upstream on 127.0.0.1:%d\n", port);
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            int closed = 0;
            for (;;) {
                ssize_t r = read(c->fd, c->buf + c->len, BUF - 1 - c->len);
                if (r > 0) {
                    c->len += (size_t)r;
                    if (serve(c) < 0) { closed = 1; break; }
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) closed = 1;
                break;
            }
            if (closed) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
            }
        }
    }
}
