/* POSIX CPU counts: online CPUs; for this process, the affinity mask capped
   by a cgroup CPU quota (Linux). */
#include "../internal.h"

#include <stdio.h>
#include <unistd.h>
#if defined(__linux__)
#  include <sched.h>
#endif

int mproc__os_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < INT32_MAX ? (int)n : 1;
}

#if defined(__linux__) && !defined(MPROC_PORTABLE_POSIX)
/* CPUs in our affinity mask; the set is grown for machines with more than
   CPU_SETSIZE CPUs. */
static int affinity_count(void)
{
    for (int ncpu = CPU_SETSIZE; ncpu <= (1 << 20); ncpu *= 2) {
        cpu_set_t *set = CPU_ALLOC((size_t)ncpu);
        if (!set) return 0;
        size_t size = CPU_ALLOC_SIZE((size_t)ncpu);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) {
            int n = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n;
        }
        CPU_FREE(set);
    }
    return 0;
}

/* ceil(quota / period), or 0 when unlimited or unreadable. */
static int quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0) return 0;
    return (int)((quota + period - 1) / period);
}

/* cgroup v2: "max 100000" or "<quota> <period>" in cpu.max. */
static int read_cpu_max(const char *dir)
{
    char path[1200], first[32];
    long long quota, period;
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", dir);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    int n = fscanf(f, "%31s %lld", first, &period);
    fclose(f);
    if (n != 2 || sscanf(first, "%lld", &quota) != 1) return 0;
    return quota_cpus(quota, period);
}

/* cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us. */
static int read_cfs_quota(const char *dir)
{
    static const char *mounts[] = {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"};
    for (size_t m = 0; m < sizeof mounts / sizeof mounts[0]; m++) {
        char path[1200];
        long long quota = 0, period = 0;
        snprintf(path, sizeof path, "%s%s/cpu.cfs_quota_us", mounts[m], dir);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        int ok = fscanf(f, "%lld", &quota) == 1;
        fclose(f);
        snprintf(path, sizeof path, "%s%s/cpu.cfs_period_us", mounts[m], dir);
        if (!ok || !(f = fopen(path, "re"))) continue;
        ok = fscanf(f, "%lld", &period) == 1;
        fclose(f);
        if (ok) return quota_cpus(quota, period);
    }
    return 0;
}

/* The smallest quota on the way from our cgroup up to the root. */
static int cgroup_limit(int v2, char *dir)
{
    int best = 0;
    for (;;) {
        int q = v2 ? read_cpu_max(dir) : read_cfs_quota(dir);
        if (q > 0 && (best == 0 || q < best)) best = q;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) break;
        *slash = '\0';
    }
    int q = v2 ? read_cpu_max("") : read_cfs_quota("");
    if (q > 0 && (best == 0 || q < best)) best = q;
    return best;
}

/* Lines of /proc/self/cgroup: "0::/path" (v2) or "N:cpu,cpuacct:/path". */
static int cgroup_cpu_quota(void)
{
    char line[1024];
    int best = 0;
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        line[strcspn(line, "\n")] = '\0';
        *c2 = '\0';
        const char *controllers = c1 + 1;
        int v2 = *controllers == '\0';
        int q = 0;
        if (v2 || strstr(controllers, "cpu") != NULL) q = cgroup_limit(v2, c2 + 1);
        if (q > 0 && (best == 0 || q < best)) best = q;
    }
    fclose(f);
    return best;
}

int mproc__os_process_cpu_count(void)
{
    int n = affinity_count();
    int quota = cgroup_cpu_quota();
    if (n <= 0) n = mproc__os_cpu_count();
    return quota > 0 && quota < n ? quota : n;
}
#else
int mproc__os_process_cpu_count(void) { return mproc__os_cpu_count(); }
#endif
