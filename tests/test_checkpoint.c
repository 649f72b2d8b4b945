/* test_checkpoint: placeholder while the real test is written. */
int main(void)
{
    return 0;
}
