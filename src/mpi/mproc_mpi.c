/* libmproc_mpi: the MPI guard and the message layer (pool_remote.h) over
   MPI point-to-point. All traffic uses a duplicate of MPI_COMM_WORLD with
   MPI_ERRORS_RETURN, so the program's own MPI messages never mix with the
   pool's and a failed call is an error code, not an abort. */
#include <mpi.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproc_mpi.h"
#include "../pool_remote.h"

static MPI_Comm comm = MPI_COMM_NULL;
static int my_rank, my_size = 1;

/* Messages of more than INT_MAX bytes go as blocks of 1 MiB plus a rest. */
#define BLOCK (1 << 20)

static int byte_type(size_t len, MPI_Datatype *t, int *count)
{
    MPI_Datatype blk;
    if (len <= INT_MAX) {
        *t = MPI_BYTE;
        *count = (int)len;
        return 0;
    }
    int lens[2] = {(int)(len / BLOCK), (int)(len % BLOCK)};
    MPI_Aint disp[2] = {0, (MPI_Aint)(len / BLOCK) * BLOCK};
    MPI_Datatype types[2];
    if (MPI_Type_contiguous(BLOCK, MPI_BYTE, &blk) != MPI_SUCCESS) return MPROC_EOS;
    types[0] = blk;
    types[1] = MPI_BYTE;
    int rc = MPI_Type_create_struct(2, lens, disp, types, t);
    if (rc == MPI_SUCCESS) rc = MPI_Type_commit(t);
    MPI_Type_free(&blk);
    *count = 1;
    return rc == MPI_SUCCESS ? 0 : MPROC_EOS;
}

static void type_done(MPI_Datatype *t)
{
    if (*t != MPI_BYTE) MPI_Type_free(t); /* operations using it keep it */
}

static int m_isend(void *ctx, int peer, int tag, const void *buf, size_t len, void **req)
{
    MPI_Datatype t;
    int count;
    (void)ctx;
    MPI_Request *r = malloc(sizeof *r);
    if (!r) return MPROC_ENOMEM;
    int rc = byte_type(len, &t, &count);
    if (!rc) {
        rc = MPI_Isend(buf, count, t, peer, tag, comm, r) == MPI_SUCCESS ? 0 : MPROC_EOS;
        type_done(&t);
    }
    if (rc) free(r);
    else *req = r;
    return rc;
}

static int m_test(void *ctx, void *req)
{
    MPI_Request *r = req;
    int flag = 0;
    (void)ctx;
    if (MPI_Test(r, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(r);
        return MPROC_EOS;
    }
    if (flag) free(r);
    return flag;
}

static int m_probe(void *ctx, int peer, int *tag, size_t *len, void **msg)
{
    MPI_Message m;
    MPI_Status st;
    MPI_Count n;
    int flag = 0;
    (void)ctx;
    if (MPI_Improbe(peer, MPI_ANY_TAG, comm, &flag, &m, &st) != MPI_SUCCESS) return MPROC_EOS;
    if (!flag) return 0;
    MPI_Message *keep = malloc(sizeof *keep);
    if (!keep || MPI_Get_elements_x(&st, MPI_BYTE, &n) != MPI_SUCCESS || n < 0) {
        free(keep);
        return MPROC_EOS;
    }
    *keep = m;
    *msg = keep;
    *tag = st.MPI_TAG;
    *len = (size_t)n;
    return 1;
}

static int m_irecv(void *ctx, void *msg, void *buf, size_t len, void **req)
{
    MPI_Message *m = msg;
    MPI_Datatype t;
    int count;
    (void)ctx;
    MPI_Request *r = malloc(sizeof *r);
    int rc = r ? byte_type(len, &t, &count) : MPROC_ENOMEM;
    if (!rc) {
        rc = MPI_Imrecv(buf, count, t, m, r) == MPI_SUCCESS ? 0 : MPROC_EOS;
        type_done(&t);
    }
    free(m);
    if (rc) free(r);
    else *req = r;
    return rc;
}

static void at_exit(void)
{
    /* A lost rank would make MPI_Finalize wait for ever. */
    if (mproc__pool_remote_shutdown()) MPI_Finalize();
}

int mproc_mpi_guard(int argc, char **argv)
{
    static mproc__net net;
    int rc = mproc_main_guard(argc, argv); /* a spawned child never returns */
    int inited = 0, provided = 0, len = 0;
    char node[MPI_MAX_PROCESSOR_NAME];
    if (rc) return rc;
    if (comm != MPI_COMM_NULL) return MPROC_ESTATE;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) return MPROC_EOS;
    } else {
        MPI_Query_thread(&provided);
    }
    /* Rank 0's pool calls MPI from its serving threads, one at a time. */
    if (provided < MPI_THREAD_SERIALIZED) {
        fprintf(stderr, "mproc_mpi: MPI gives thread level %d, the pool needs MPI_THREAD_SERIALIZED\n",
                provided);
        return MPROC_ENOTSUP;
    }
    if (MPI_Comm_dup(MPI_COMM_WORLD, &comm) != MPI_SUCCESS ||
        MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN) != MPI_SUCCESS)
        return MPROC_EOS;
    MPI_Comm_rank(comm, &my_rank);
    MPI_Comm_size(comm, &my_size);
    if (MPI_Get_processor_name(node, &len) != MPI_SUCCESS) len = 0;
    node[len < (int)sizeof node ? len : (int)sizeof node - 1] = '\0';
    net.rank = my_rank;
    net.size = my_size;
    memcpy(net.node, node, sizeof net.node - 1); /* the NUL is at len or in the copy's last byte */
    net.node[sizeof net.node - 1] = '\0';
    net.isend = m_isend;
    net.test = m_test;
    net.probe = m_probe;
    net.irecv = m_irecv;
    if (my_rank == 0) {
        if ((rc = mproc__pool_remote_install(&net))) return rc;
        mproc__pool_remote_default(my_size > 1);
        atexit(at_exit);
        return 0;
    }
    rc = mproc__pool_remote_worker(&net);
    fflush(NULL);
    if (rc == MPROC_ECHILD) exit(0); /* a rank was lost: MPI_Finalize would wait for it */
    if (rc) fprintf(stderr, "mproc_mpi: rank %d: %s\n", my_rank, mproc_strerror(rc));
    MPI_Finalize();
    exit(rc ? 1 : 0);
}

int mproc_mpi_rank(void) { return my_rank; }
int mproc_mpi_size(void) { return my_size; }

int mproc_mpi_pool_create(mproc_pool **pool, const mproc_pool_options *opt)
{
    return mproc__pool_remote_create(pool, opt);
}

void mproc_mpi_pool_default(int over_ranks) { mproc__pool_remote_default(over_ranks && my_size > 1); }

void mproc_mpi_set_dead_timeout(int ms) { mproc__pool_remote_set_dead_ms(ms); }
