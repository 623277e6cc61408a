/* LD_PRELOAD shim for the Janus benchmark (bench/janus.py): getifaddrs() reports the loopback
 * interface "lo" without IFF_LOOPBACK, so that Janus 1.1.2 -- which skips loopback interfaces
 * before it applies ice_enforce_list -- gathers a host candidate on 127.0.0.1. Together with
 * ice_enforce_list = "lo", 127.0.0.1 is the only candidate it offers. Loaded into the Janus
 * process only. Build: gcc -shared -fPIC -O2 -o janus_loopback.so janus_loopback.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

typedef int (*getifaddrs_fn)(struct ifaddrs **);

int getifaddrs(struct ifaddrs **ifap) {
    static getifaddrs_fn real = NULL;
    if (real == NULL) {
        real = (getifaddrs_fn)dlsym(RTLD_NEXT, "getifaddrs");
        if (real == NULL)
            return -1;
    }
    int rc = real(ifap);
    if (rc != 0 || ifap == NULL)
        return rc;
    for (struct ifaddrs *ifa = *ifap; ifa != NULL; ifa = ifa->ifa_next) {
        if (ifa->ifa_name != NULL && strcmp(ifa->ifa_name, "lo") == 0)
            ifa->ifa_flags &= ~(unsigned int)IFF_LOOPBACK;
    }
    return rc;
}
