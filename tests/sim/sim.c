/* placeholder replaced by the simulator */
int main(void) { return 0; }
