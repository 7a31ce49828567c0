/* Writes a valid bootstrap message to the file named by argv[1]: the seed
   of the bootstrap fuzzer's corpus. */
#include <stdio.h>
#include <string.h>

#include "bootstrap.h"

int main(int argc, char **argv)
{
    static mproc__boot b;
    unsigned char *msg;
    size_t len;
    if (argc != 2) return 2;
    strcpy(b.target.module, "libexample.so");
    b.target.offset = 0x1234;
    strcpy(b.name, "Process-1");
    b.parent_pid = 4242;
    b.flags = MPROC__BOOT_DAEMON;
    b.arg = (const unsigned char *)"argument";
    b.arg_len = 8;
    b.nobjects = 2;
    b.objects[0].kind = 1;
    b.objects[0].nhandles = 1;
    b.objects[1].kind = 9;
    b.objects[1].nhandles = 3;
    if (mproc__boot_encode(&b, &msg, &len)) return 1;
    FILE *f = fopen(argv[1], "wb");
    if (!f || fwrite(msg, 1, len, f) != len) return 1;
    fclose(f);
    return 0;
}
