/*
 * scene7_wsdl: the WSDL and XSD the Scene7 view serves at
 * /scene7/webservice/IpsApi.wsdl, written by hand from
 * spec/compat-research.md section 1 (namespace 2014-04-03, document /
 * literal SOAP 1.1). Only the job operations taskmill serves are declared.
 * ScheduledJob, JobLog and JobLogDetail follow the order of their doc
 * pages' tables (the examples agree); an element taskmill may leave out
 * is minOccurs="0". triggerState is a string: the doc types it xsd:int,
 * its example and the Job Trigger States constants are strings.
 * Element order inside each type is the XSD order the research gives;
 * scene7.c writes its replies in exactly this order. The service address
 * is left as SCENE7_WSDL_ADDRESS and filled in per request from the Host
 * header. Constant data; no threading or ownership concerns.
 */
#include "scene7.h"
#include "scene7_soap.h"

#define NS "http://www.scene7.com/IpsApi/xsd/2014-04-03"

#define STR(name)       "<xsd:element name=\"" name "\" type=\"xsd:string\"/>"
#define OPT(name, type) "<xsd:element name=\"" name "\" type=\"" type "\" minOccurs=\"0\"/>"
#define INT(name)       "<xsd:element name=\"" name "\" type=\"xsd:int\"/>"
#define HANDLES_PARAM(op) \
    "<xsd:element name=\"" op "Param\"><xsd:complexType><xsd:sequence>"                    \
    STR("companyHandle") STR("jobHandle")                                                  \
    "</xsd:sequence></xsd:complexType></xsd:element>"                                     \
    "<xsd:element name=\"" op "Return\"><xsd:complexType><xsd:sequence/></xsd:complexType></xsd:element>"
#define MESSAGES(op)                                                                           \
    "<wsdl:message name=\"" op "Request\"><wsdl:part name=\"parameters\" element=\"types:" op  \
    "Param\"/></wsdl:message>"                                                                 \
    "<wsdl:message name=\"" op "Response\"><wsdl:part name=\"parameters\" element=\"types:" op \
    "Return\"/></wsdl:message>"
#define PORT_OP(op)                                                                    \
    "<wsdl:operation name=\"" op                                                       \
    "\">"                                                                              \
    "<wsdl:input message=\"types:" op                                                  \
    "Request\"/>"                                                                      \
    "<wsdl:output message=\"types:" op                                                 \
    "Response\"/>"                                                                     \
    "<wsdl:fault name=\"ipsApiFault\" message=\"types:ipsApiFault\"/>"                 \
    "<wsdl:fault name=\"authenticationFault\" message=\"types:authenticationFault\"/>" \
    "<wsdl:fault name=\"authorizationFault\" message=\"types:authorizationFault\"/>"   \
    "</wsdl:operation>\n"
#define BIND_OP(op)                                                                               \
    "<wsdl:operation name=\"" op "\"><soap:operation soapAction=\"" op                            \
    "\"/>"                                                                                        \
    "<wsdl:input><soap:header message=\"types:authHeader\" part=\"authHeader\" use=\"literal\"/>" \
    "<soap:body use=\"literal\"/></wsdl:input>"                                                   \
    "<wsdl:output><soap:body use=\"literal\"/></wsdl:output>"                                     \
    "<wsdl:fault name=\"ipsApiFault\"><soap:fault name=\"ipsApiFault\" "                          \
    "use=\"literal\"/></wsdl:fault>"                                                              \
    "<wsdl:fault name=\"authenticationFault\"><soap:fault name=\"authenticationFault\" "          \
    "use=\"literal\"/></wsdl:fault>"                                                              \
    "<wsdl:fault name=\"authorizationFault\"><soap:fault name=\"authorizationFault\" "            \
    "use=\"literal\"/></wsdl:fault>"                                                              \
    "</wsdl:operation>\n"
/* Each operation's messages, port operation and binding (SCENE7_OPS). */
#define OP_MESSAGES(id, op) MESSAGES(op) "\n"
#define OP_PORT(id, op)     PORT_OP(op)
#define OP_BIND(id, op)     BIND_OP(op)
#define FAULT_EL(name)                                   \
    "<xsd:element name=\"" name                          \
    "\"><xsd:complexType><xsd:sequence>"                 \
    "<xsd:element name=\"code\" type=\"xsd:int\"/>" STR( \
        "reason") "</xsd:sequence></xsd:complexType></xsd:element>\n"
#define DETAIL(name) "<xsd:element name=\"" name "\" type=\"types:JobDetail\"/>"
/* A type `name` holding any number of `items` of the type `item`. */
#define ARRAY_OF(name, item)                       \
    "<xsd:complexType name=\"" name                \
    "\"><xsd:sequence>"                            \
    "<xsd:element name=\"items\" type=\"" item     \
    "\" minOccurs=\"0\" maxOccurs=\"unbounded\"/>" \
    "</xsd:sequence></xsd:complexType>\n"
/* The reply element of operation `op`: one element `name` of the type `type`. */
#define RETURNS(op, name, type)                   \
    "<xsd:element name=\"" op                     \
    "Return\"><xsd:complexType><xsd:sequence>"    \
    "<xsd:element name=\"" name "\" type=\"" type \
    "\"/>"                                        \
    "</xsd:sequence></xsd:complexType></xsd:element>\n"

const char scene7_wsdl[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<wsdl:definitions xmlns:wsdl=\"http://schemas.xmlsoap.org/wsdl/\" "
    "xmlns:soap=\"http://schemas.xmlsoap.org/wsdl/soap/\" "
    "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:types=\"" NS "\" "
    "targetNamespace=\"" NS "\">\n"
    "<wsdl:types>\n"
    "<xsd:schema targetNamespace=\"" NS "\" elementFormDefault=\"qualified\">\n"
    /* Authentication and faults. */
    "<xsd:element name=\"authHeader\"><xsd:complexType><xsd:sequence>"
    STR("user") STR("password") OPT("locale", "xsd:string") OPT("appName", "xsd:string")
    OPT("appVersion", "xsd:string") OPT("gzipResponse", "xsd:boolean")
    OPT("faultHttpStatusCode", "xsd:int")
    "</xsd:sequence></xsd:complexType></xsd:element>\n"
    FAULT_EL("ipsApiFault") FAULT_EL("authenticationFault") FAULT_EL("authorizationFault")
    /* Progress types. */
    "<xsd:complexType name=\"TaskItemProgress\"><xsd:sequence>"
    STR("itemName") "<xsd:element name=\"progress\" type=\"xsd:double\"/>" STR("progressMessage")
    "<xsd:element name=\"lastProgressUpdate\" type=\"xsd:dateTime\"/>"
    "</xsd:sequence></xsd:complexType>\n"
    ARRAY_OF("TaskItemProgressArray", "types:TaskItemProgress")
    "<xsd:complexType name=\"TaskProgress\"><xsd:sequence>"
    STR("taskType") STR("taskState")
    "<xsd:element name=\"numProcessed\" type=\"xsd:int\"/>"
    "<xsd:element name=\"numProcessing\" type=\"xsd:int\"/>"
    "<xsd:element name=\"numPending\" type=\"xsd:int\"/>"
    "<xsd:element name=\"progress\" type=\"xsd:double\"/>" STR("progressMessage")
    "<xsd:element name=\"lastProgressUpdate\" type=\"xsd:dateTime\"/>"
    "<xsd:element name=\"taskItemProgressArray\" type=\"types:TaskItemProgressArray\"/>"
    "</xsd:sequence></xsd:complexType>\n"
    ARRAY_OF("TaskProgressArray", "types:TaskProgress")
    "<xsd:complexType name=\"ActiveJob\"><xsd:sequence>"
    STR("companyHandle") STR("jobHandle") STR("name") STR("originalName") STR("type") STR("state")
    STR("submitUserEmail") STR("serverName")
    "<xsd:element name=\"startDate\" type=\"xsd:dateTime\"/>"
    "<xsd:element name=\"triggerTime\" type=\"xsd:dateTime\"/>"
    "<xsd:element name=\"totalSize\" type=\"xsd:int\"/>"
    "<xsd:element name=\"progress\" type=\"xsd:int\"/>" STR("progressMessage")
    "<xsd:element name=\"lastProgressUpdate\" type=\"xsd:dateTime\"/>"
    "<xsd:element name=\"taskProgressArray\" type=\"types:TaskProgressArray\"/>"
    "</xsd:sequence></xsd:complexType>\n"
    ARRAY_OF("ActiveJobArray", "types:ActiveJob")
    /* A job's details: taken as given, stored as the task's params. */
    "<xsd:complexType name=\"JobDetail\"><xsd:sequence>"
    "<xsd:any namespace=\"##any\" processContents=\"skip\" minOccurs=\"0\" maxOccurs=\"unbounded\"/>"
    "</xsd:sequence></xsd:complexType>\n"
    /* Scheduled jobs and job logs. */
    "<xsd:complexType name=\"ScheduledJob\"><xsd:sequence>"
    STR("companyHandle") STR("jobHandle") STR("name") STR("originalName") STR("type")
    STR("submitUserEmail") OPT("locale", "xsd:string") OPT("description", "xsd:string")
    STR("execSchedule") OPT("nextFireTime", "xsd:dateTime") STR("timeZone") STR("triggerState")
    "</xsd:sequence></xsd:complexType>\n"
    ARRAY_OF("ScheduledJobArray", "types:ScheduledJob")
    ARRAY_OF("StringArray", "xsd:string")
    "<xsd:complexType name=\"JobLogDetail\"><xsd:sequence>"
    STR("logMessage") STR("logType") OPT("assetName", "xsd:string") OPT("assetType", "xsd:string")
    OPT("assetHandle", "xsd:string")
    "</xsd:sequence></xsd:complexType>\n"
    ARRAY_OF("JobLogDetailArray", "types:JobLogDetail")
    "<xsd:complexType name=\"JobLog\"><xsd:sequence>"
    STR("companyHandle") STR("jobHandle") STR("jobName") OPT("originalJobName", "xsd:string")
    STR("submitUserEmail") STR("logType") OPT("jobSubType", "xsd:string")
    "<xsd:element name=\"startDate\" type=\"xsd:dateTime\"/>" OPT("endDate", "xsd:dateTime")
    OPT("description", "xsd:string")
    INT("fileSuccessCount") INT("fileErrorCount") INT("fileWarningCount") INT("fileDuplicateCount")
    INT("fileUpdateCount") INT("totalFileCount") OPT("transferSuccessCount", "xsd:int")
    OPT("transferErrorCount", "xsd:int") OPT("transferWarningCount", "xsd:int")
    "<xsd:element name=\"fatalError\" type=\"xsd:boolean\"/>"
    OPT("detailTotalRows", "xsd:int") OPT("detailArray", "types:JobLogDetailArray")
    "</xsd:sequence></xsd:complexType>\n"
    ARRAY_OF("JobLogArray", "types:JobLog")
    /* Operations. */
    "<xsd:element name=\"submitJobParam\"><xsd:complexType><xsd:sequence>"
    STR("companyHandle") OPT("userHandle", "xsd:string") OPT("locale", "xsd:string") STR("jobName")
    OPT("execTime", "xsd:dateTime") OPT("execSchedule", "xsd:string")
    OPT("description", "xsd:string")
    "<xsd:choice>"
    DETAIL("imageServingPublishJob") DETAIL("imageRenderingPublishJob") DETAIL("videoPublishJob")
    DETAIL("serverDirectoryPublishJob") DETAIL("uploadDirectoryJob") DETAIL("uploadUrlsJob")
    DETAIL("optimizeImagesJob") DETAIL("ripPdfsJob") DETAIL("reprocessAssetsJob")
    DETAIL("automatedSetGenerationJob") DETAIL("exportJob")
    "</xsd:choice>"
    "</xsd:sequence></xsd:complexType></xsd:element>\n"
    RETURNS("submitJob", "jobHandle", "xsd:string")
    "<xsd:element name=\"getActiveJobsParam\"><xsd:complexType><xsd:sequence>"
    OPT("companyHandle", "xsd:string") OPT("jobHandle", "xsd:string")
    OPT("originalName", "xsd:string")
    "</xsd:sequence></xsd:complexType></xsd:element>\n"
    RETURNS("getActiveJobs", "jobArray", "types:ActiveJobArray")
    "<xsd:element name=\"getScheduledJobsParam\"><xsd:complexType><xsd:sequence>"
    STR("companyHandle") OPT("jobHandle", "xsd:string") OPT("originalName", "xsd:string")
    "</xsd:sequence></xsd:complexType></xsd:element>\n"
    RETURNS("getScheduledJobs", "jobArray", "types:ScheduledJobArray")
    "<xsd:element name=\"getJobLogsParam\"><xsd:complexType><xsd:sequence>"
    OPT("companyHandle", "xsd:string") OPT("userHandle", "xsd:string")
    OPT("sortBy", "xsd:string") OPT("sortDirection", "xsd:string")
    OPT("startDate", "xsd:dateTime") OPT("endDate", "xsd:dateTime") OPT("numRows", "xsd:int")
    "</xsd:sequence></xsd:complexType></xsd:element>\n"
    RETURNS("getJobLogs", "jobLogArray", "types:JobLogArray")
    "<xsd:element name=\"getJobLogDetailsParam\"><xsd:complexType><xsd:sequence>"
    STR("companyHandle") OPT("jobHandle", "xsd:string") OPT("originalName", "xsd:string")
    OPT("logTypeArray", "types:StringArray") OPT("recordsPerPage", "xsd:int")
    OPT("resultsPage", "xsd:int") OPT("sortBy", "xsd:string") OPT("sortDirection", "xsd:string")
    "</xsd:sequence></xsd:complexType></xsd:element>\n"
    RETURNS("getJobLogDetails", "jobLogArray", "types:JobLogArray")
    HANDLES_PARAM("stopJob") "\n" HANDLES_PARAM("pauseJob") "\n" HANDLES_PARAM("resumeJob") "\n"
    HANDLES_PARAM("executeJob") "\n" HANDLES_PARAM("deleteJob") "\n"
    "</xsd:schema>\n"
    "</wsdl:types>\n"
    "<wsdl:message name=\"authHeader\"><wsdl:part name=\"authHeader\" element=\"types:authHeader\"/></wsdl:message>\n"
    "<wsdl:message name=\"ipsApiFault\"><wsdl:part name=\"fault\" element=\"types:ipsApiFault\"/></wsdl:message>\n"
    "<wsdl:message name=\"authenticationFault\"><wsdl:part name=\"fault\" element=\"types:authenticationFault\"/></wsdl:message>\n"
    "<wsdl:message name=\"authorizationFault\"><wsdl:part name=\"fault\" element=\"types:authorizationFault\"/></wsdl:message>\n"
    SCENE7_OPS(OP_MESSAGES)
    "<wsdl:portType name=\"IpsApiPortType\">\n"
    SCENE7_OPS(OP_PORT)
    "</wsdl:portType>\n"
    "<wsdl:binding name=\"IpsApiSoapBinding\" type=\"types:IpsApiPortType\">"
    "<soap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>\n"
    SCENE7_OPS(OP_BIND)
    "</wsdl:binding>\n"
    "<wsdl:service name=\"IpsApiService\">"
    "<wsdl:port name=\"IpsApiSoapPort\" binding=\"types:IpsApiSoapBinding\">"
    "<soap:address location=\"" SCENE7_WSDL_ADDRESS "\"/>"
    "</wsdl:port></wsdl:service>\n"
    "</wsdl:definitions>\n";
