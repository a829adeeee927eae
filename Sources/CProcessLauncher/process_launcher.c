// Why C: the child must ask for PR_SET_PDEATHSIG between fork and exec, which neither
// posix_spawn nor Foundation's Process can do. And why a dedicated thread: the kernel sends
// the death signal when the *thread* that forked exits, not the process; Swift's cooperative
// pool (libdispatch workers) retires idle threads, which would kill a healthy child. Forking
// from one thread that never exits ties the child's life to the process's.
//
// Why a raw clone instead of fork(): fork() runs the pthread_atfork handlers, and OpenBLAS's
// shuts its worker threads down; a MiniLM matrix product running on another thread at that
// moment then waits for them forever. The child here only makes system calls until it execs
// (as posix_spawn's does), so it needs none of the handlers.
#define _GNU_SOURCE
#include "process_launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct launch_request {
    const char *path;
    char *const *argv;
    const char *log_path;
    pid_t pid;
    int error;
    int done;
    struct launch_request *next;
};

static pthread_mutex_t launcher_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t launcher_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t launcher_done = PTHREAD_COND_INITIALIZER;
static struct launch_request *queue_head = NULL;
static pthread_once_t launcher_once = PTHREAD_ONCE_INIT;
static int launcher_start_error = 0;

static void close_inherited_descriptors(int keep_below) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)keep_below, ~0U, 0) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = keep_below; fd < max; fd++) close(fd);
}

// Runs in the child between fork and exec: async-signal-safe calls only.
static void become_child(const struct launch_request *r, pid_t parent, int report_fd) {
    int err;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) goto fail;
    // The parent may have died before prctl took effect.
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);

    // Inherited ignored signals (a server ignores SIGTERM/SIGINT to handle them itself) would
    // survive exec and make the child deaf to them.
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    int in = open("/dev/null", O_RDONLY);
    int out = open(r->log_path ? r->log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0) goto fail;
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) goto fail;
    // Keep the report pipe (close-on-exec) until exec; close everything else.
    if (report_fd != 3) {
        if (dup3(report_fd, 3, O_CLOEXEC) < 0) goto fail;
    }
    close_inherited_descriptors(4);
    execve(r->path, r->argv, environ);
fail:
    err = errno;
    (void)!write(3, &err, sizeof err);
    _exit(127);
}

static void perform(struct launch_request *r) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        r->error = errno;
        return;
    }
    pid_t parent = getpid();
    pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) {
        r->error = errno;
        close(report[0]);
        close(report[1]);
        return;
    }
    if (pid == 0) {
        close(report[0]);
        become_child(r, parent, report[1]);
    }
    close(report[1]);
    // The pipe closes on a successful exec; an errno arrives if anything failed before it.
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(report[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        r->error = child_errno ? child_errno : ECHILD;
        return;
    }
    r->pid = pid;
    r->error = 0;
}

static void *launcher_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&launcher_lock);
    for (;;) {
        while (queue_head == NULL) pthread_cond_wait(&launcher_wake, &launcher_lock);
        struct launch_request *r = queue_head;
        queue_head = r->next;
        pthread_mutex_unlock(&launcher_lock);
        perform(r);
        pthread_mutex_lock(&launcher_lock);
        r->done = 1;
        pthread_cond_broadcast(&launcher_done);
    }
    return NULL;
}

static void start_launcher(void) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    launcher_start_error = pthread_create(&thread, &attr, launcher_main, NULL);
    pthread_attr_destroy(&attr);
}

int sluice_launch(const char *path, char *const argv[], const char *log_path, pid_t *pid) {
    pthread_once(&launcher_once, start_launcher);
    if (launcher_start_error) return launcher_start_error;
    struct launch_request r = {path, argv, log_path, 0, 0, 0, NULL};
    pthread_mutex_lock(&launcher_lock);
    struct launch_request **tail = &queue_head;
    while (*tail) tail = &(*tail)->next;
    *tail = &r;
    pthread_cond_signal(&launcher_wake);
    while (!r.done) pthread_cond_wait(&launcher_done, &launcher_lock);
    pthread_mutex_unlock(&launcher_lock);
    if (r.error == 0) *pid = r.pid;
    return r.error;
}
