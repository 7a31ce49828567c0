/* Uses an installed mproc::mpi: a Pool over the ranks of `mpirun -n 2`. */
#include <stdio.h>

#include <mproc_mpi.h>

static int triple(const void *item, void *result)
{
    *(int *)result = *(const int *)item * 3;
    return 0;
}

int main(int argc, char **argv)
{
    if (mproc_mpi_guard(argc, argv) != 0) return 1;
    int in[4] = {1, 2, 3, 4}, out[4] = {0};
    mproc_pool *pool;
    int rc = mproc_mpi_pool_create(&pool, NULL);
    if (!rc) rc = mproc_pool_map(pool, triple, in, sizeof in[0], 4, out, sizeof out[0], 1);
    if (!rc) {
        mproc_pool_close(pool);
        mproc_pool_join(pool);
        mproc_pool_destroy(pool);
    }
    if (rc || out[3] != 12) {
        fprintf(stderr, "consumer_mpi: %s\n", mproc_strerror(rc));
        return 1;
    }
    printf("consumer_mpi: ok over %d ranks\n", mproc_mpi_size());
    return 0;
}
