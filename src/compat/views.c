/*
 * views: the table of compatibility views (views.h).
 */
#include "views.h"

const struct route_table compat_views[] = {
    {sailpoint_routes, sailpoint_write_error, NULL},
    {sailpoint_oauth_routes, sailpoint_oauth_write_error, NULL},
    {livepeer_routes, livepeer_error_write, NULL},
    {scene7_routes, scene7_error_write, "text/xml; charset=utf-8"},
    {NULL, NULL, NULL},
};
