/*
 * A minimal, fast OpenAI-compatible upstream for benchmarks: epoll, HTTP/1.1 keep-alive,
 * fixed answers. POST .../chat/completions answers a fixed completion, or a fixed SSE stream
 * when the body contains "stream":true. Anything else gets 404. Single-threaded on purpose:
 * it stays far from being the bottleneck while leaving the other core to the proxy under test.
 *
 *   cc -O2 -o mock-upstream mock-upstream.c && ./mock-upstream 9100 [GAP_US]
 *
 * With GAP_US > 0 a streamed answer is paced like a model's: the head and first event at once,
 * then one event every GAP_US microseconds, each in its own write (one token per read).
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
#include <time.h>
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
    /* Paced stream in progress: the offset of its next event in stream_response (0: none). */
    size_t paced_at;
    long long due_us;
    struct conn *next_paced, *prev_paced;
    char buf[BUF];
};

static long long gap_us;
static struct conn *paced; /* the connections with a paced stream in progress */

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void unlink_paced(struct conn *c) {
    if (!c->paced_at) return;
    if (c->prev_paced) c->prev_paced->next_paced = c->next_paced; else paced = c->next_paced;
    if (c->next_paced) c->next_paced->prev_paced = c->prev_paced;
    c->paced_at = 0;
    c->next_paced = c->prev_paced = NULL;
}

/* The end of the event that starts at `from` in stream_response (after its blank line). */
static size_t event_end(size_t from) {
    char *e = strstr(stream_response + from, "\n\n");
    return e ? (size_t)(e - stream_response) + 2 : strlen(stream_response);
}

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
        if (c->paced_at) return 0; /* the next request waits for the stream's end */
        const char *resp = NOT_FOUND;
        if (strncmp(c->buf, "POST ", 5) == 0 && strstr(c->buf, "/chat/completions")) {
            char saved = c->buf[head + body];
            c->buf[head + body] = 0;
            int stream = strstr(c->buf + head, "\"stream\":true") != NULL || strstr(c->buf + head, "\"stream\": true") != NULL;
            c->buf[head + body] = saved;
            resp = stream ? stream_response : completion_response;
            if (stream && gap_us > 0) {
                /* The head and the first event now, the rest from the timer loop. */
                size_t first = event_end((size_t)(strstr(stream_response, "\r\n\r\n") - stream_response) + 4);
                if (write_all(c->fd, stream_response, first) < 0) return -1;
                memmove(c->buf, c->buf + head + body, c->len - head - body);
                c->len -= head + body;
                c->paced_at = first;
                c->due_us = now_us() + gap_us;
                c->next_paced = paced;
                c->prev_paced = NULL;
                if (paced) paced->prev_paced = c;
                paced = c;
                return 0;
            }
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
    gap_us = argc > 2 ? atoll(argv[2]) : 0;
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
        int timeout = -1;
        if (paced) {
            long long t = now_us(), soonest = paced->due_us;
            for (struct conn *p = paced; p; p = p->next_paced) if (p->due_us < soonest) soonest = p->due_us;
            timeout = soonest <= t ? 0 : (int)((soonest - t + 999) / 1000);
        }
        int n = epoll_wait(ep, events, MAX_EVENTS, timeout);
        /* Paced streams whose next event is due: one event each. */
        for (struct conn *p = paced, *next; p; p = next) {
            next = p->next_paced;
            if (p->due_us > now_us()) continue;
            size_t end = event_end(p->paced_at);
            if (write_all(p->fd, stream_response + p->paced_at, end - p->paced_at) < 0 || end >= strlen(stream_response)) {
                unlink_paced(p);
                if (p->len && serve(p) < 0) shutdown(p->fd, SHUT_RDWR);
                continue;
            }
            p->paced_at = end;
            p->due_us += gap_us;
        }
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
                unlink_paced(c);
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
            }
        }
    }
}
